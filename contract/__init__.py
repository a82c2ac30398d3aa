"""The component contract: what a use-case package in ``components/`` declares, and how templates find it.

Templates in ``pipelines/`` and ``serving/`` depend on this package only, never on ``components/``.
"""

from contract.component import Component
from contract.streaming import Aggregate, EventField, EventSchema, FeatureGroup, StreamingSpec, Window

__all__ = ["Aggregate", "Component", "EventField", "EventSchema", "FeatureGroup", "StreamingSpec", "Window"]
