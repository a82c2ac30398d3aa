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
class Domain:
    """The values a field may take: a request outside it is refused (HTTP 400 naming the field and the rule)
    instead of being scored as if it were data the model knows."""

    values: tuple[str, ...] = ()
    """Allowed values of a string field (empty: any)."""
    minimum: float | None = None
    """Smallest allowed value of a numeric field, inclusive."""
    maximum: float | None = None
    """Largest allowed value of a numeric field, inclusive."""

    def violation(self, value: Any) -> str | None:
        """Why ``value`` (already of the field's type) is outside the domain, or None."""
        if self.values and value not in self.values:
            return f"{value!r} is not one of {', '.join(self.values)}"
        if self.minimum is not None and value < self.minimum:
            return f"{value:g} is below the minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{value:g} is above the maximum {self.maximum:g}"
        return None


@dataclass(frozen=True)
class EventField:
    """One field of the JSON events on ``<component>.events``."""

    name: str
    type: EventType
    domain: Domain | None = None
    """The values a prediction request may send for it (requests only: events are archived as they come)."""


@dataclass(frozen=True)
class EventKind:
    """One kind of event in a stream that holds several (an order placed, an order delivered)."""

    name: str
    fields: tuple[str, ...]
    """The declared fields an event of this kind carries, besides the kind and event-time fields; the others are
    absent from it (a delivery has no basket value)."""


@dataclass(frozen=True)
class EventSchema:
    """The shape of a component's raw events: one kind, or several told apart by a ``kind`` field."""

    fields: tuple[EventField, ...]
    event_time: str
    """A ``long`` field: event time in epoch milliseconds; windows and watermarks run on it."""
    label: str | None = None
    """A field the model learns to predict, when events carry it (not a feature input). A label that arrives
    later, as an event of its own, is declared by ``StreamingSpec.feedback`` instead."""
    kind: str | None = None
    """A ``string`` field naming each event's kind, when the stream holds several (``kinds``)."""
    kinds: tuple[EventKind, ...] = ()

    def field(self, name: str) -> EventField | None:
        return next((f for f in self.fields if f.name == name), None)

    def event_kind(self, name: str) -> EventKind | None:
        return next((k for k in self.kinds if k.name == name), None)

    def carried(self, kind: str | None) -> tuple[EventField, ...]:
        """The fields an event of ``kind`` must carry: all of them for a single-kind stream; the kind field,
        the event time and the kind's own for a stream of several (an unknown kind carries nothing)."""
        if not self.kinds:
            return self.fields
        declared = self.event_kind(kind or "")
        if declared is None:
            return ()
        wanted = {self.kind, self.event_time, *declared.fields}
        return tuple(f for f in self.fields if f.name in wanted)


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
    kinds: tuple[str, ...] = ()
    """Only events of these kinds count (``EventSchema.kinds``); empty: every event."""

    def feature_names(self) -> list[str]:
        return [a.feature_name for a in self.aggregates]


@dataclass(frozen=True)
class Feedback:
    """Labels that arrive as events of their own, some time after the prediction they judge (a delivery's
    outcome, a chargeback). The streaming job publishes them on ``<component>.labels``; training joins each example
    to its label as known by the training cutoff; the monitor joins served predictions to them."""

    kind: str
    """The event kind that carries a label."""
    key: str
    """The field naming what was predicted (an order id): carried by the label events and by the events the
    examples come from, and sent with each prediction request (an entity key or a request field)."""
    label: str
    """The field holding the label; the model's ``target``."""
    max_delay_s: int
    """How long after its prediction a label may still arrive; an example younger than this at the training
    cutoff may still lack its label."""


@dataclass(frozen=True)
class StreamingSpec:
    """What the streaming job computes for a component."""

    events: EventSchema
    groups: tuple[FeatureGroup, ...]
    watermark_s: int = 5
    """How late (in event time) an event may arrive and still count."""
    partitions: int = 2
    """Partitions of the events topic (and of the job's parallelism ceiling)."""
    feedback: Feedback | None = None
    """Labels that arrive as their own events, when the model's target is not in the event it predicts."""

    @property
    def warm_up_s(self) -> int:
        """How long after a stream begins its longest window first holds a full span (its size, plus a slide for
        the alignment of the first pane): features before then count less than they will for the rest of the
        stream's life, so a model must not learn from them (``pipelines.training.dataset``)."""
        return max((g.window.size_s + g.window.slide_s for g in self.groups), default=0)

    def to_json_dict(self, component: str) -> dict[str, Any]:
        """The job spec handed to the streaming job: topics plus these declarations."""
        return {
            "component": component,
            "topics": topics(component, labels=self.feedback is not None),
            **asdict(self),
        }


def topics(component: str, labels: bool = False) -> dict[str, str]:
    """Kafka topic names of a component; ``labels`` when it declares ``Feedback``. ``predictions`` is the
    inference log every model server of the component writes (``serving.inference_log``). With labels, the monitor
    job (``monitoring.monitor_job``) writes each prediction paired with its label to ``scored`` and the prediction
    records it cannot use to ``predictions_dead_letter``."""
    names = {
        "events": f"{component}.events",
        "features": f"{component}.features",
        "dead_letter": f"{component}.events.dlq",
        "predictions": f"{component}.predictions",
    }
    if labels:
        names["labels"] = f"{component}.labels"
        names["scored"] = f"{component}.scored"
        names["predictions_dead_letter"] = f"{component}.predictions.dlq"
    return names
