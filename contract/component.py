"""The ``Component`` a use-case package exports, and its validation at load time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from contract.model import ModelSpec, param_problem
from contract.resources import ResourceHints
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
    model: ModelSpec
    resources: ResourceHints = field(default_factory=ResourceHints)
    """What its workloads need in a cluster (Flink, model servers, training steps)."""

    def feature_groups(self) -> list[str]:
        """The feature groups the model reads, in declaration order."""
        wanted = set(self.model.feature_groups) or {g.name for g in self.streaming.groups}
        return [g.name for g in self.streaming.groups if g.name in wanted]

    def entity_keys(self) -> list[str]:
        """Join keys of the model's feature groups, in declaration order."""
        groups = set(self.feature_groups())
        return list(dict.fromkeys(g.entity for g in self.streaming.groups if g.name in groups))

    def feature_refs(self) -> list[str]:
        """Feast references (``view:feature``) of everything the model reads."""
        groups = set(self.feature_groups())
        return [f"{g.name}:{f}" for g in self.streaming.groups if g.name in groups for f in g.feature_names()]

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

    yield from _model_problems(component)
    if not isinstance(component.resources, ResourceHints):
        yield f"resources must be ResourceHints, not {type(component.resources).__name__}"
    else:
        yield from component.resources.problems()


def _model_problems(component: Component) -> Iterator[str]:
    model = component.model
    if not isinstance(model, ModelSpec):
        yield f"model must be a ModelSpec, not {type(model).__name__}"
        return
    events = component.streaming.events
    if model.task not in {"classification", "regression"}:
        yield f"model task must be classification or regression, not {model.task!r}"
    for name in ("examples", "prepare", "fit", "predict"):
        if not callable(getattr(model, name)):
            yield f"model.{name} must be callable"
    for name in model.request_fields:
        if events.field(name) is None:
            yield f"request field {name!r} is not an event field"
    if model.target in model.request_fields:
        yield f"target {model.target!r} cannot also be a request field"
    groups = {g.name for g in component.streaming.groups}
    for group in model.feature_groups:
        if group not in groups:
            yield f"model reads feature group {group!r}, which streaming does not define"
    if model.metric.direction not in {"max", "min"}:
        yield f"metric {model.metric.name!r}: direction must be 'max' or 'min'"
    if not model.search_space:
        yield "model declares an empty search space"
    for name, param in model.search_space.items():
        problem = param_problem(name, param)
        if problem:
            yield problem
    if not isinstance(model.max_stages, int) or model.max_stages < 1:
        yield "model.max_stages must be a positive integer"
