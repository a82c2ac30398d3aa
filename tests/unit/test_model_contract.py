"""The model part of the contract: broken declarations are named at load time."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from components.fraud.model import MODEL
from contract import Choice, Component, IntRange, LogUniform, Metric, Uniform
from contract.component import ContractError
from contract.registry import load


def _model(**changes: Any) -> Component:
    return dataclasses.replace(load("fraud"), model=dataclasses.replace(MODEL, **changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"request_fields": ("amount", "ghost")}, "request field 'ghost' is not an event field"),
        ({"request_fields": ("amount", "is_fraud")}, "target 'is_fraud' cannot also be a request field"),
        ({"feature_groups": ("card_10m", "card_1d")}, "reads feature group 'card_1d', which streaming does not"),
        ({"search_space": {}}, "empty search space"),
        ({"search_space": {"lr": LogUniform(0.0, 1.0)}}, "'lr': LogUniform needs 0 < low < high"),
        ({"search_space": {"depth": IntRange(5, 5)}}, "'depth': low must be below high"),
        ({"search_space": {"kind": Choice(())}}, "'kind': Choice needs at least one value"),
        ({"search_space": {"lr": (0.1, 0.2)}}, "'lr': tuple is not Choice, Uniform, LogUniform or IntRange"),
        (
            {"metric": Metric("auc", cast(Any, "up"), lambda y, p: 0.0)},
            "metric 'auc': direction must be 'max' or 'min'",
        ),
        ({"task": "ranking"}, "task must be one of binary, multiclass, regression"),
        ({"fit": None}, "model.fit must be callable"),
        ({"max_stages": 0}, "max_stages must be a positive integer"),
        (
            {"metric": Metric("auc", "max", cast(Any, None))},
            r"metric 'auc': score must be callable \(y_true, y_predicted\)",
        ),
        ({"baseline": 0.5}, "model.baseline must be callable .* or None, not 0.5"),
        ({"metric": "roc_auc"}, r"model.metric must be a Metric\(name, direction, score\), not str 'roc_auc'"),
        (
            {"metric": Metric("auc", "max", lambda y, p: 0.0, tolerance=-0.01)},
            "metric 'auc': tolerance must be a number of 0 or more, not -0.01",
        ),
        ({"search_space": [("lr", LogUniform(0.1, 0.2))]}, "model.search_space must be a mapping .* not list"),
        ({"feature_groups": "card_10m"}, "model.feature_groups must be a tuple of names, not str 'card_10m'"),
    ],
)
def test_broken_model_declarations_are_named(changes: dict[str, Any], message: str) -> None:
    component = _model(**changes)
    with pytest.raises(ContractError, match=f"component 'fraud': .*{message}"):
        component.validate()


def test_model_that_is_not_a_model_spec_is_named() -> None:
    component = dataclasses.replace(load("fraud"), model=cast(Any, {"fit": None}))
    with pytest.raises(ContractError, match="model must be a ModelSpec, not dict"):
        component.validate()


def test_metric_gain_follows_its_direction() -> None:
    higher = Metric("auc", "max", lambda y, p: 0.0)
    lower = Metric("mae", "min", lambda y, p: 0.0)
    assert higher.gain(0.9, 0.8) == pytest.approx(0.1) and higher.better(0.9, 0.8)
    assert lower.gain(2.0, 3.0) == pytest.approx(1.0) and lower.better(2.0, 3.0)
    assert not lower.better(3.0, 2.0)


def test_feature_refs_cover_the_groups_the_model_reads() -> None:
    fraud = load("fraud")
    assert fraud.entity_keys() == ["card_id", "merchant_id"]
    assert "card_10m:event_count" in fraud.feature_refs()
    narrowed = _model(feature_groups=("merchant_1h",))
    assert narrowed.entity_keys() == ["merchant_id"]
    assert all(ref.startswith("merchant_1h:") for ref in narrowed.feature_refs())
    assert Uniform(0.0, 1.0).low == 0.0


def test_request_fields_given_as_one_string_are_named_once() -> None:
    """A bare string is not read one character at a time (one error per letter)."""
    component = _model(request_fields="amount")
    with pytest.raises(ContractError) as raised:
        component.validate()
    assert str(raised.value) == "component 'fraud': model.request_fields must be a tuple of names, not str 'amount'"
