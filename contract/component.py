"""The ``Component`` a use-case package exports, and its validation at load time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from contract.streaming import NAME, StreamingSpec

Event = dict[str, Any]
EventGenerator = Callable[[int, int, int], Iterator[Event]]
"""``generate(n_events, start_ms, seed)``: realistic synthetic events in event-time order, with real signal."""

NUMERIC = {"long", "double"}


class ContractError(ValueError):
    """A component breaks the contract; the message names the component and the problem."""


@dataclass(frozen=True)
class Component:
    """Everything a use-case domain declares; the shared templates need nothing else."""

    name: str
    """Lower-case identifier; prefixes topics, the Feast project and the registered model."""
    description: str
    streaming: StreamingSpec
    generate: EventGenerator

    def validate(self) -> Component:
        """Raise ``ContractError`` naming the first broken rule; return self when the component is sound."""
        problems = list(_problems(self))
        if problems:
            raise ContractError(f"component {self.name!r}: " + "; ".join(problems))
        return self


def _problems(component: Component) -> Iterator[str]:
    if not isinstance(component.name, str) or not NAME.match(component.name):
        yield f"name must match {NAME.pattern}"
    spec = component.streaming
    if not isinstance(spec, StreamingSpec):
        yield f"streaming must be a StreamingSpec, not {type(spec).__name__}"
        return
    if not callable(component.generate):
        yield "generate must be callable (n_events, start_ms, seed) -> events"
    events = spec.events
    names = [f.name for f in events.fields]
    if len(set(names)) != len(names):
        yield "event fields repeat a name"
    time_field = events.field(events.event_time)
    if time_field is None or time_field.type != "long":
        yield f"event_time {events.event_time!r} must be a declared long field (epoch milliseconds)"
    if events.label and events.field(events.label) is None:
        yield f"label {events.label!r} is not a declared event field"
    if not spec.groups:
        yield "streaming declares no feature groups"
    groups = [g.name for g in spec.groups]
    if len(set(groups)) != len(groups):
        yield "feature group names repeat"
    for group in spec.groups:
        if not NAME.match(group.name):
            yield f"feature group {group.name!r} must match {NAME.pattern}"
        entity = events.field(group.entity)
        if entity is None:
            yield f"feature group {group.name!r}: entity key {group.entity!r} is not an event field"
        elif entity.type not in {"string", "long"}:
            yield f"feature group {group.name!r}: entity key {group.entity!r} must be string or long"
        if group.window.size_s <= 0 or group.window.slide_s <= 0 or group.window.size_s % group.window.slide_s:
            yield f"feature group {group.name!r}: window size must be a positive multiple of its slide"
        for aggregate in group.aggregates:
            if aggregate.function == "count":
                if aggregate.field is not None:
                    yield f"feature group {group.name!r}: count takes no field"
                continue
            field = events.field(aggregate.field or "")
            if field is None:
                yield f"feature group {group.name!r}: {aggregate.function} of undeclared field {aggregate.field!r}"
            elif field.type not in NUMERIC:
                yield (
                    f"feature group {group.name!r}: {aggregate.function} needs a numeric field, "
                    f"{field.name} is {field.type}"
                )
        features = group.feature_names()
        if len(set(features)) != len(features):
            yield f"feature group {group.name!r} declares the same aggregate twice"
