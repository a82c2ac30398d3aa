"""The component contract: what a use-case component declares, and how templates find it (``contract.registry``:
by name, through the ``mlstack.components`` entry points, the project's own registered in its pyproject.toml).

Templates in ``pipelines/`` and ``serving/`` depend on this package only, never on ``components/``.
"""

from contract.component import Component
from contract.model import Choice, IntRange, LogUniform, Metric, ModelSpec, Uniform
from contract.resources import ResourceHints, WorkloadHint
from contract.streaming import (
    Aggregate,
    Domain,
    EventField,
    EventKind,
    EventSchema,
    FeatureGroup,
    Feedback,
    StreamingSpec,
    Window,
)

__all__ = [
    "Aggregate",
    "Choice",
    "Component",
    "Domain",
    "EventField",
    "EventKind",
    "EventSchema",
    "FeatureGroup",
    "Feedback",
    "IntRange",
    "LogUniform",
    "Metric",
    "ModelSpec",
    "ResourceHints",
    "StreamingSpec",
    "Uniform",
    "Window",
    "WorkloadHint",
]
