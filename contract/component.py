"""The ``Component`` a use-case package exports, and its validation at load time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from contract.generator import EventGenerator, generator_problems
from contract.model import TASKS, Metric, ModelSpec, param_problem
from contract.resources import ResourceHints
from contract.streaming import (
    EVENT_TYPES,
    FUNCTIONS,
    NAME,
    Aggregate,
    Domain,
    EventField,
    EventKind,
    EventSchema,
    FeatureGroup,
    Feedback,
    StreamingSpec,
    Window,
    feast_entity,
)

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
        """Raise ``ContractError`` naming the component and every broken rule; return self when it is sound."""
        problems = list(_problems(self))
        if problems:
            raise ContractError(f"component {self.name!r}: " + "; ".join(problems))
        return self


def _problems(component: Component) -> Iterator[str]:
    if not isinstance(component.name, str) or not NAME.match(component.name):
        yield f"name must match {NAME.pattern}"
    yield from generator_problems(component.generate)
    spec = component.streaming
    if not isinstance(spec, StreamingSpec):
        yield f"streaming must be a StreamingSpec, not {type(spec).__name__}"
        return
    if not _is_int(spec.watermark_s) or spec.watermark_s < 0:
        yield f"streaming.watermark_s must be a non-negative integer (seconds), not {spec.watermark_s!r}"
    if not _is_int(spec.partitions) or spec.partitions < 1:
        yield f"streaming.partitions must be a positive integer, not {spec.partitions!r}"
    events = spec.events
    event_problems = list(_event_problems(events))
    yield from event_problems
    # Checks against the event fields need a readable schema; without one they would only repeat its problem.
    known = events if not event_problems else None
    groups = spec.groups if isinstance(spec.groups, tuple | list) else ()
    if groups is not spec.groups:
        yield f"streaming.groups must be a tuple of FeatureGroup, not {type(spec.groups).__name__}"
    elif not groups:
        yield "streaming declares no feature groups"
    for group in groups:
        if not isinstance(group, FeatureGroup):
            yield f"streaming.groups holds a {type(group).__name__}, not a FeatureGroup"
        else:
            yield from _group_problems(group, known)
    sound = [g for g in groups if isinstance(g, FeatureGroup)]
    names = [g.name for g in sound]
    if len(set(names)) != len(names):
        yield "feature group names repeat"
    yield from _feast_entity_problems(sound)
    if spec.feedback is not None:
        yield from _feedback_problems(component, spec.feedback, known)

    yield from _model_problems(component, known)
    if not isinstance(component.resources, ResourceHints):
        yield f"resources must be ResourceHints, not {type(component.resources).__name__}"
    else:
        yield from component.resources.problems()


def _class_problems(model: ModelSpec) -> Iterator[str]:
    classes = model.classes
    if isinstance(classes, str) or not isinstance(classes, tuple | list):
        yield f"model.classes must be a tuple of class names, not {type(classes).__name__} {classes!r}"
        return
    if not all(isinstance(c, str) and c for c in classes):
        yield "model.classes must be non-empty strings"
    elif len(set(classes)) != len(classes):
        yield "model.classes repeat a name"
    if model.task == "multiclass" and len(classes) < 2:
        yield "a multiclass model declares its classes (at least two), in the order of predict's columns"
    elif model.task == "binary" and classes and len(classes) != 2:
        yield f"a binary model's classes are two names (negative, positive), not {len(classes)}"
    elif model.task == "regression" and classes:
        yield "a regression model declares no classes"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _event_problems(events: object) -> Iterator[str]:
    if not isinstance(events, EventSchema):
        yield f"streaming.events must be an EventSchema, not {type(events).__name__}"
        return
    fields = events.fields if isinstance(events.fields, tuple | list) else ()
    if fields is not events.fields:
        yield f"event fields must be a tuple of EventField, not {type(events.fields).__name__}"
        return
    broken = [f for f in fields if not isinstance(f, EventField)]
    for item in broken:
        yield f"event fields hold a {type(item).__name__}, not an EventField"
    if broken:
        return
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        yield "event fields repeat a name"
    for item in fields:
        if item.type not in EVENT_TYPES:
            yield f"event field {item.name!r}: type {item.type!r} is not one of {', '.join(EVENT_TYPES)}"
        elif item.domain is not None:
            yield from _domain_problems(item)
    time_field = events.field(events.event_time)
    if time_field is None or time_field.type != "long":
        yield f"event_time {events.event_time!r} must be a declared long field (epoch milliseconds)"
    if events.label and events.field(events.label) is None:
        yield f"label {events.label!r} is not a declared event field"
    yield from _kind_problems(events)


def _domain_problems(item: EventField) -> Iterator[str]:
    domain, where = item.domain, f"event field {item.name!r}: domain"
    if not isinstance(domain, Domain):
        yield f"{where} must be a Domain(values, minimum, maximum), not {type(domain).__name__}"
        return
    bounds = (domain.minimum, domain.maximum)
    if domain.values and (item.type != "string" or isinstance(domain.values, str)):
        yield f"{where}: values are for string fields, as a tuple of strings"
    if any(b is not None for b in bounds):
        if item.type not in NUMERIC:
            yield f"{where}: minimum and maximum are for numeric fields, {item.name} is {item.type}"
        elif not all(b is None or (isinstance(b, int | float) and not isinstance(b, bool)) for b in bounds):
            yield f"{where}: minimum and maximum must be numbers"
        elif domain.minimum is not None and domain.maximum is not None and domain.minimum > domain.maximum:
            yield f"{where}: minimum {domain.minimum} is above maximum {domain.maximum}"


def _kind_problems(events: EventSchema) -> Iterator[str]:
    """A stream of several kinds: a string kind field, named kinds, each carrying declared fields."""
    if not isinstance(events.kinds, tuple | list) or isinstance(events.kinds, str):
        yield f"event kinds must be a tuple of EventKind, not {type(events.kinds).__name__}"
        return
    if bool(events.kinds) != bool(events.kind):
        yield "a stream of several kinds declares both kind (the field naming them) and kinds"
        return
    if not events.kinds:
        return
    kind_field = events.field(events.kind or "")
    if kind_field is None or kind_field.type != "string":
        yield f"kind {events.kind!r} must be a declared string field"
    names = []
    for kind in events.kinds:
        if not isinstance(kind, EventKind):
            yield f"event kinds hold a {type(kind).__name__}, not an EventKind"
            continue
        names.append(kind.name)
        if not isinstance(kind.name, str) or not NAME.match(kind.name):
            yield f"event kind {kind.name!r} must match {NAME.pattern}"
        yield from _names(kind.fields, f"event kind {kind.name!r}: fields")
        if isinstance(kind.fields, tuple | list):
            for name in kind.fields:
                if events.field(name) is None:
                    yield f"event kind {kind.name!r}: field {name!r} is not a declared event field"
                elif name in {events.kind, events.event_time}:
                    yield f"event kind {kind.name!r}: {name!r} is carried by every kind, do not list it"
    if len(set(names)) != len(names):
        yield "event kind names repeat"
    used = {name for kind in events.kinds if isinstance(kind, EventKind) for name in kind.fields}
    for item in events.fields:
        if item.name not in {*used, events.kind, events.event_time}:
            yield f"event field {item.name!r} is carried by no kind"


def _carries(events: EventSchema, kinds: tuple[str, ...], name: str) -> list[str]:
    """The kinds among ``kinds`` (every kind when empty) whose events lack field ``name``."""
    wanted = kinds or tuple(k.name for k in events.kinds)
    return [k for k in wanted if name not in {f.name for f in events.carried(k)}]


def _feedback_problems(component: Component, feedback: object, events: EventSchema | None) -> Iterator[str]:
    if not isinstance(feedback, Feedback):
        yield f"streaming.feedback must be a Feedback or None, not {type(feedback).__name__}"
        return
    if not _is_int(feedback.max_delay_s) or feedback.max_delay_s <= 0:
        yield f"feedback.max_delay_s must be a positive integer (seconds), not {feedback.max_delay_s!r}"
    if events is None:
        return
    if events.label:
        yield "events carry a label and feedback declares one too: declare one of them"
    if events.event_kind(feedback.kind) is None:
        yield f"feedback kind {feedback.kind!r} is not a declared event kind"
        return
    for name, what in ((feedback.key, "key"), (feedback.label, "label")):
        if _carries(events, (feedback.kind,), name):
            yield f"feedback {what} {name!r} is not carried by {feedback.kind!r} events"
    others = tuple(k.name for k in events.kinds if k.name != feedback.kind)
    if not any(feedback.key in {f.name for f in events.carried(k)} for k in others):
        yield f"feedback key {feedback.key!r} is carried by no other kind: nothing to join the labels to"
    model = component.model
    if isinstance(model, ModelSpec):
        if model.target != feedback.label:
            yield f"model target {model.target!r} must be the feedback label {feedback.label!r}"
        # The entity keys of the sound groups the model reads (Component.entity_keys): a broken group is named by
        # its own check, not a crash here.
        groups = component.streaming.groups if isinstance(component.streaming.groups, tuple | list) else ()
        read = set(model.feature_groups) if isinstance(model.feature_groups, tuple) else set()
        keys = {g.entity for g in groups if isinstance(g, FeatureGroup) and (not read or g.name in read)}
        # Request fields that are no tuple are named by the model's check: not a second error here.
        fields = model.request_fields if isinstance(model.request_fields, tuple) else None
        if fields is not None and feedback.key not in {*keys, *fields}:
            yield (
                f"feedback key {feedback.key!r} must be sent with each prediction (an entity key or a request "
                "field), so served predictions can be joined to their labels"
            )


def _group_problems(group: FeatureGroup, events: EventSchema | None) -> Iterator[str]:
    """What is wrong with one feature group; ``events`` is None when the schema itself is broken."""
    where = f"feature group {group.name!r}"
    if not isinstance(group.name, str) or not NAME.match(group.name):
        yield f"{where} must match {NAME.pattern}"
    entity = events.field(group.entity) if events is not None else None
    if events is not None and entity is None:
        yield f"{where}: entity key {group.entity!r} is not an event field"
    elif entity and entity.type not in {"string", "long"}:
        yield f"{where}: entity key {group.entity!r} must be string or long"
    kinds = group.kinds if isinstance(group.kinds, tuple | list) and not isinstance(group.kinds, str) else None
    if kinds is None:
        yield f"{where}: kinds must be a tuple of event kind names, not {type(group.kinds).__name__}"
    elif events is not None:
        if kinds and not events.kinds:
            yield f"{where} filters by kind, but the events declare no kinds"
        for kind in kinds:
            if events.kinds and events.event_kind(kind) is None:
                yield f"{where}: kind {kind!r} is not a declared event kind"
        if events.kinds and entity is not None and (lacking := _carries(events, tuple(kinds), group.entity)):
            yield f"{where}: {', '.join(lacking)} events do not carry its key {group.entity!r} (filter by kinds)"
    window = group.window
    if not isinstance(window, Window):
        yield f"{where}: window must be a Window(size_s, slide_s), not {type(window).__name__}"
    elif (
        not (_is_int(window.size_s) and _is_int(window.slide_s))
        or window.size_s <= 0
        or window.slide_s <= 0
        or window.size_s % window.slide_s
    ):
        yield f"{where}: window size must be a positive multiple of its slide"
    aggregates = group.aggregates if isinstance(group.aggregates, tuple | list) else ()
    if aggregates is not group.aggregates:
        yield f"{where}: aggregates must be a tuple of Aggregate, not {type(group.aggregates).__name__}"
        return
    if not aggregates:
        yield f"{where} declares no aggregates"
    for aggregate in aggregates:
        if not isinstance(aggregate, Aggregate):
            yield f"{where}: aggregates hold a {type(aggregate).__name__}, not an Aggregate"
            continue
        if aggregate.function not in FUNCTIONS:
            yield f"{where}: aggregate function {aggregate.function!r} is not one of {', '.join(FUNCTIONS)}"
            continue
        if aggregate.function == "count":
            if aggregate.field is not None:
                yield f"{where}: count takes no field"
            continue
        if events is None:
            continue
        field = events.field(aggregate.field or "")
        if field is None:
            yield f"{where}: {aggregate.function} of undeclared field {aggregate.field!r}"
        elif field.type not in NUMERIC:
            yield f"{where}: {aggregate.function} needs a numeric field, {field.name} is {field.type}"
        elif events.kinds and kinds is not None and (lacking := _carries(events, tuple(kinds), field.name)):
            yield f"{where}: {', '.join(lacking)} events do not carry {field.name!r} (filter by kinds)"
    if all(isinstance(a, Aggregate) for a in aggregates):
        features = group.feature_names()
        if len(set(features)) != len(features):
            yield f"{where} declares the same aggregate twice"


def _feast_entity_problems(groups: list[FeatureGroup]) -> Iterator[str]:
    """Each distinct entity key becomes its own Feast entity (``feast_entity``); two keys must not share one."""
    owner: dict[str, FeatureGroup] = {}
    for group in groups:
        if not isinstance(group.entity, str):
            continue
        entity = feast_entity(group.entity)
        first = owner.setdefault(entity, group)
        if first.entity != group.entity:
            yield (
                f"feature groups {first.name!r} (key {first.entity!r}) and {group.name!r} (key {group.entity!r}) "
                f"both map to Feast entity {entity!r} (the key without '_id'); use one key for both or rename one"
            )


def _names(value: object, what: str) -> Iterator[str]:
    """A tuple of names, not a lone string (which would be read one character at a time)."""
    if isinstance(value, str) or not isinstance(value, tuple | list):
        yield f"{what} must be a tuple of names, not {type(value).__name__} {value!r}"


def _model_problems(component: Component, events: EventSchema | None) -> Iterator[str]:
    model = component.model
    if not isinstance(model, ModelSpec):
        yield f"model must be a ModelSpec, not {type(model).__name__}"
        return
    if model.task not in TASKS:
        hint = " (a classifier is 'binary' or 'multiclass')" if str(model.task) == "classification" else ""
        yield f"model task must be one of {', '.join(TASKS)}, not {model.task!r}{hint}"
    yield from _class_problems(model)
    for name in ("examples", "prepare", "fit", "predict"):
        if not callable(getattr(model, name)):
            yield f"model.{name} must be callable"
    if model.baseline is not None and not callable(model.baseline):
        yield f"model.baseline must be callable (joined frame -> predictions) or None, not {model.baseline!r}"
    request_problems = list(_names(model.request_fields, "model.request_fields"))
    yield from request_problems
    if not request_problems:
        for name in model.request_fields:
            if events is not None and events.field(name) is None:
                yield f"request field {name!r} is not an event field"
        if model.target in model.request_fields:
            yield f"target {model.target!r} cannot also be a request field"
    group_problems = list(_names(model.feature_groups, "model.feature_groups"))
    yield from group_problems
    if not group_problems and isinstance(component.streaming, StreamingSpec):
        groups = {g.name for g in component.streaming.groups if isinstance(g, FeatureGroup)}
        for group in model.feature_groups:
            if group not in groups:
                yield f"model reads feature group {group!r}, which streaming does not define"
    metric = model.metric
    if not isinstance(metric, Metric):
        yield f"model.metric must be a Metric(name, direction, score), not {type(metric).__name__} {metric!r}"
    else:
        if metric.direction not in {"max", "min"}:
            yield f"metric {metric.name!r}: direction must be 'max' or 'min'"
        if not callable(metric.score):
            yield f"metric {metric.name!r}: score must be callable (y_true, y_predicted) -> float"
        tolerance = metric.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance >= 0:
            yield f"metric {metric.name!r}: tolerance must be a number of 0 or more, not {tolerance!r}"
    if not isinstance(model.search_space, Mapping):
        yield (
            "model.search_space must be a mapping of parameter name to Choice, Uniform, LogUniform or IntRange, "
            f"not {type(model.search_space).__name__}"
        )
    elif not model.search_space:
        yield "model declares an empty search space"
    else:
        for name, param in model.search_space.items():
            problem = param_problem(name, param)
            if problem:
                yield problem
    if not _is_int(model.max_stages) or model.max_stages < 1:
        yield "model.max_stages must be a positive integer"
