"""The contract beyond one binary score: task types (what predict returns, how class targets are encoded), event
kinds within one stream, and labels that arrive as their own events. Broken declarations are named at load."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import numpy as np
import pytest

from components.fraud.model import MODEL
from contract import (
    Aggregate,
    Component,
    Domain,
    EventField,
    EventKind,
    EventSchema,
    FeatureGroup,
    Feedback,
    StreamingSpec,
    Window,
)
from contract.component import ContractError
from contract.registry import load
from contract.tasks import OutputError, check_output, classes, encode_target
from tests.support.one_kind import one_kind

FIELDS = (
    EventField("kind", "string"),
    EventField("order_id", "string"),
    EventField("courier_id", "string"),
    EventField("distance_km", "double"),
    EventField("outcome", "string"),
    EventField("event_time", "long"),
)
KINDS = (
    EventKind("placed", ("order_id", "courier_id", "distance_km")),
    EventKind("delivered", ("order_id", "courier_id", "outcome")),
)
EVENTS = EventSchema(fields=FIELDS, event_time="event_time", kind="kind", kinds=KINDS)
PLACED = FeatureGroup(
    "courier_1h",
    entity="courier_id",
    window=Window(3600, 300),
    aggregates=(Aggregate("count"), Aggregate("avg", "distance_km")),
    kinds=("placed",),
)
FEEDBACK = Feedback(kind="delivered", key="order_id", label="outcome", max_delay_s=3600)
CLASSES = ("on_time", "late", "very_late")


def _component(
    events: EventSchema = EVENTS,
    groups: tuple[FeatureGroup, ...] = (PLACED,),
    feedback: Feedback | None = FEEDBACK,
    **model: Any,
) -> Component:
    """A multiclass component over a two-kind stream, built on fraud's callables (only the declarations matter)."""
    spec = dataclasses.replace(
        MODEL,
        **{
            "task": "multiclass",
            "classes": CLASSES,
            "target": "outcome",
            "request_fields": ("order_id", "distance_km"),
            **model,
        },
    )
    streaming = StreamingSpec(events=events, groups=groups, feedback=feedback)
    return dataclasses.replace(load("fraud"), name="orders", streaming=streaming, model=spec)


def test_a_multiclass_component_over_kinds_with_feedback_is_valid() -> None:
    component = _component().validate()
    assert component.streaming.to_json_dict("orders")["topics"]["labels"] == "orders.labels"
    assert [f.name for f in EVENTS.carried("delivered")] == ["kind", "order_id", "courier_id", "outcome", "event_time"]
    assert EVENTS.carried("refunded") == ()  # an unknown kind carries nothing: every field is missing
    # A component without feedback has no labels topic.
    assert "labels" not in one_kind(load("fraud")).streaming.to_json_dict("fraud")["topics"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"events": dataclasses.replace(EVENTS, kind=None)}, "declares both kind .* and kinds"),
        ({"events": dataclasses.replace(EVENTS, kind="distance_km")}, "kind 'distance_km' must be a declared string"),
        (
            {"events": dataclasses.replace(EVENTS, kinds=(*KINDS, EventKind("placed", ("order_id",))))},
            "event kind names repeat",
        ),
        (
            {"events": dataclasses.replace(EVENTS, kinds=(EventKind("placed", ("order_id", "tip")), KINDS[1]))},
            "event kind 'placed': field 'tip' is not a declared event field",
        ),
        (
            {"events": dataclasses.replace(EVENTS, kinds=(EventKind("placed", ("order_id",)), KINDS[1]))},
            "event field 'distance_km' is carried by no kind",
        ),
        (
            {"groups": (dataclasses.replace(PLACED, kinds=("picked_up",)),)},
            "feature group 'courier_1h': kind 'picked_up' is not a declared event kind",
        ),
        (
            {"groups": (dataclasses.replace(PLACED, kinds=()),)},
            "feature group 'courier_1h': delivered events do not carry 'distance_km'",
        ),
        (
            {"groups": (dataclasses.replace(PLACED, kinds=cast(Any, "placed")),)},
            "kinds must be a tuple of event kind names, not str",
        ),
        ({"feedback": dataclasses.replace(FEEDBACK, kind="refunded")}, "feedback kind 'refunded' is not a declared"),
        (
            {"feedback": dataclasses.replace(FEEDBACK, label="distance_km")},
            "feedback label 'distance_km' is not carried by 'delivered' events",
        ),
        ({"feedback": dataclasses.replace(FEEDBACK, max_delay_s=0)}, "feedback.max_delay_s must be a positive"),
        ({"target": "late"}, "model target 'late' must be the feedback label 'outcome'"),
        ({"request_fields": ("distance_km",)}, "feedback key 'order_id' must be sent with each prediction"),
        ({"events": dataclasses.replace(EVENTS, label="outcome")}, "events carry a label and feedback declares one"),
    ],
)
def test_broken_kinds_and_feedback_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=f"component 'orders': .*{message}"):
        _component(**change).validate()


def test_a_kind_filter_on_a_single_kind_stream_is_named() -> None:
    fraud = one_kind(load("fraud"))
    group = dataclasses.replace(fraud.streaming.groups[0], kinds=("placed",))
    broken = dataclasses.replace(fraud, streaming=dataclasses.replace(fraud.streaming, groups=(group,)))
    with pytest.raises(ContractError, match="feature group 'card_10m' filters by kind, but the events declare no"):
        broken.validate()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"classes": ()}, "a multiclass model declares its classes"),
        ({"classes": ("on_time", "on_time")}, "model.classes repeat a name"),
        ({"classes": "on_time"}, "model.classes must be a tuple of class names, not str"),
        ({"task": "binary", "classes": CLASSES}, "a binary model's classes are two names"),
        ({"task": "regression", "classes": CLASSES}, "a regression model declares no classes"),
        ({"task": "classification"}, "not 'classification' \\(a classifier is 'binary' or 'multiclass'\\)"),
    ],
)
def test_broken_task_declarations_are_named(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        _component(**model).validate()


def test_check_output_accepts_each_task_shape_and_names_the_wrong_one() -> None:
    multiclass = _component().model
    binary, regression = load("fraud").model, load("demand").model
    assert check_output(binary, [0.1, 0.9], 2).shape == (2,)
    assert check_output(regression, np.array([3.0, 12.5]), 2).shape == (2,)
    assert check_output(multiclass, [[0.2, 0.5, 0.3]], 1).shape == (1, 3)
    with pytest.raises(OutputError, match=r"one probability per class \(on_time, late, very_late\) .* shape \(2,\)"):
        check_output(multiclass, [1, 2], 2)  # class indices where probabilities were due
    with pytest.raises(OutputError, match=r"binary predict must return one probability .* shape \(2,\); got shape"):
        check_output(binary, [[0.9, 0.1], [0.2, 0.8]], 2)  # predict_proba's two columns where one score was due
    with pytest.raises(OutputError, match="rows must sum to 1"):
        check_output(multiclass, [[0.2, 0.2, 0.2]], 1)
    with pytest.raises(OutputError, match=r"probabilities in \[0, 1\]"):
        check_output(binary, [1.5], 1)
    with pytest.raises(OutputError, match="NaN or infinite"):
        check_output(regression, [float("nan")], 1)
    with pytest.raises(OutputError, match="must return numbers"):
        check_output(regression, ["many"], 1)


def test_class_targets_are_encoded_from_names_or_indices_and_unknown_ones_named() -> None:
    multiclass = _component().model
    assert encode_target(multiclass, ["late", "on_time", "very_late"]).tolist() == [1, 0, 2]
    assert encode_target(multiclass, np.array([2, 0])).tolist() == [2, 0]
    with pytest.raises(OutputError, match="target values 'lost' are not among the declared classes"):
        encode_target(multiclass, ["late", "lost"])
    assert encode_target(load("fraud").model, [0, 1]).tolist() == [0, 1]  # binary and regression pass through
    assert classes(multiclass) == CLASSES
    assert classes(load("fraud").model) == ("0", "1")
    assert classes(load("demand").model) == ()


def test_request_values_outside_their_declared_domain_are_refused_naming_field_and_rule() -> None:
    from serving.request_schema import BadRequest, RequestSchema

    schema = RequestSchema.of(load("fraud"))
    good = {"card_id": "card-0001", "merchant_id": "m-001", "transaction_id": "t-1", "amount": 12.5, "channel": "pos"}
    assert schema.rows([good])["amount"] == [12.5]
    with pytest.raises(BadRequest, match=r"instance 0: amount -5 is below the minimum 0\.01"):
        schema.rows([{**good, "amount": -5}])
    with pytest.raises(BadRequest, match="instance 1: channel 'teleport' is not one of online, pos"):
        schema.rows([good, {**good, "channel": "teleport"}])
    with pytest.raises(BadRequest, match=r"input amount\[0\]: amount 250000 is above the maximum 100000"):
        schema.columns({name: [value] for name, value in {**good, "amount": 250_000.0}.items()})


def test_generated_fraud_events_lie_in_their_declared_domains() -> None:
    fraud = load("fraud")
    domains = {f.name: f.domain for f in fraud.streaming.events.fields if f.domain is not None}
    assert set(domains) == {"amount", "channel"}
    for event in fraud.generate(5_000, 0, 3):
        carried = domains.keys() & event.keys()  # a transaction carries them, its resolution none
        assert carried in (set(), set(domains)), event
        assert not [name for name in carried if domains[name].violation(event[name])], event


@pytest.mark.parametrize(
    ("domain_field", "message"),
    [
        (EventField("distance_km", "double", Domain(values=("near",))), "values are for string fields"),
        (EventField("order_id", "string", Domain(minimum=0)), "minimum and maximum are for numeric fields"),
        (EventField("distance_km", "double", Domain(minimum=5, maximum=1)), "minimum 5 is above maximum 1"),
        (EventField("distance_km", "double", cast(Any, (0, 10))), r"must be a Domain\(values, minimum, maximum\)"),
    ],
)
def test_broken_domains_are_named(domain_field: EventField, message: str) -> None:
    fields = tuple(domain_field if f.name == domain_field.name else f for f in FIELDS)
    with pytest.raises(ContractError, match=f"event field '{domain_field.name}': domain.*{message}"):
        _component(events=dataclasses.replace(EVENTS, fields=fields)).validate()
