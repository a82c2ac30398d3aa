"""Streaming declarations: the raw events of a component and the windowed features computed from them.

They are plain data so they can be written to JSON and read by the streaming job, which runs in its own
environment (and its own image in the cluster) without importing the component.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

EventType = Literal["string", "long", "double", "boolean"]
Function = Literal["count", "sum", "avg", "min", "max"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
FUNCTIONS: tuple[str, ...] = get_args(Function)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def feast_entity(key: str) -> str:
    """The Feast entity a feature group's key becomes: the key without an ``_id`` suffix (``card_id`` -> ``card``),
    as ``pipelines.features.feast_repo`` names it. Two different keys must not become the same entity."""
    return key.removesuffix("_id")


@dataclass(frozen=True)
class EventField:
    """One field of the JSON events on ``<component>.events``."""

    name: str
    type: EventType


@dataclass(frozen=True)
class EventSchema:
    """The shape of a component's raw events."""

    fields: tuple[EventField, ...]
    event_time: str
    """A ``long`` field: event time in epoch milliseconds; windows and watermarks run on it."""
    label: str | None = None
    """A field the model learns to predict, when events carry it (not a feature input)."""

    def field(self, name: str) -> EventField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Window:
    """A sliding (hop) window; ``slide_s == size_s`` makes it tumbling."""

    size_s: int
    slide_s: int

    @property
    def label(self) -> str:
        """``90s``, ``10m`` or ``2h``: used in feature names."""
        for unit, seconds in (("h", 3600), ("m", 60)):
            if self.size_s % seconds == 0:
                return f"{self.size_s // seconds}{unit}"
        return f"{self.size_s}s"


@dataclass(frozen=True)
class Aggregate:
    """An aggregation over a window; ``count`` takes no field."""

    function: Function
    field: str | None = None

    @property
    def feature_name(self) -> str:
        """Name inside its group's feature view, e.g. ``amount_sum``; across views Feast's full names
        (``card_10m__amount_sum``) keep them apart."""
        return f"{self.field or 'event'}_{self.function}"


@dataclass(frozen=True)
class FeatureGroup:
    """Features of one entity over one window: one Feast feature view, one output row per entity and slide."""

    name: str
    """Feature view name, e.g. ``card_10m``."""
    entity: str
    """The event field that keys the group (e.g. ``card_id``); also the Feast entity's join key."""
    window: Window
    aggregates: tuple[Aggregate, ...]

    def feature_names(self) -> list[str]:
        return [a.feature_name for a in self.aggregates]


@dataclass(frozen=True)
class StreamingSpec:
    """What the streaming job computes for a component."""

    events: EventSchema
    groups: tuple[FeatureGroup, ...]
    watermark_s: int = 5
    """How late (in event time) an event may arrive and still count."""
    partitions: int = 2
    """Partitions of the events topic (and of the job's parallelism ceiling)."""

    def to_json_dict(self, component: str) -> dict[str, Any]:
        """The job spec handed to the streaming job: topics plus these declarations."""
        return {
            "component": component,
            "topics": topics(component),
            **asdict(self),
        }


def topics(component: str) -> dict[str, str]:
    """Kafka topic names of a component."""
    return {
        "events": f"{component}.events",
        "features": f"{component}.features",
        "dead_letter": f"{component}.events.dlq",
    }
