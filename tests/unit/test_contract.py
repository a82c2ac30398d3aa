from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any, cast

import pytest

from components.fraud.component import STREAMING
from contract import Aggregate, Component, EventField, EventSchema, FeatureGroup, ResourceHints, Window, WorkloadHint
from contract.component import ContractError
from contract.registry import available, load
from contract.streaming import feast_entity
from local.paths import REPO_ROOT


def _with(**changes: Any) -> Component:
    return dataclasses.replace(load("fraud"), **changes)


def test_fraud_is_discovered_and_valid() -> None:
    assert "fraud" in available()
    component = load("fraud")
    assert component.name == "fraud"
    assert [g.name for g in component.streaming.groups] == ["card_10m", "card_1h", "merchant_1h"]


def test_unknown_component_lists_the_known_ones() -> None:
    with pytest.raises(ContractError, match=r"unknown component 'nope'; available: .*fraud"):
        load("nope")


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ((FeatureGroup("g", "no_such_field", Window(60, 60), (Aggregate("count"),)),), "entity key 'no_such_field'"),
        ((FeatureGroup("g", "amount", Window(60, 60), (Aggregate("count"),)),), "must be string or long"),
        ((FeatureGroup("g", "card_id", Window(90, 60), (Aggregate("count"),)),), "positive multiple of its slide"),
        ((FeatureGroup("g", "card_id", Window(60, 60), (Aggregate("sum", "ghost"),)),), "undeclared field 'ghost'"),
        ((FeatureGroup("g", "card_id", Window(60, 60), (Aggregate("avg", "channel"),)),), "needs a numeric field"),
        ((FeatureGroup("g", "card_id", Window(60, 60), (Aggregate("count", "amount"),)),), "count takes no field"),
        ((), "declares no feature groups"),
    ],
)
def test_broken_streaming_declarations_are_named(groups: tuple[FeatureGroup, ...], message: str) -> None:
    broken = _with(streaming=dataclasses.replace(STREAMING, groups=groups))
    with pytest.raises(ContractError, match=f"component 'fraud': .*{message}"):
        broken.validate()


def test_event_time_must_be_a_long_field() -> None:
    events = dataclasses.replace(STREAMING.events, event_time="channel")
    with pytest.raises(ContractError, match="event_time 'channel' must be a declared long field"):
        _with(streaming=dataclasses.replace(STREAMING, events=events)).validate()


def test_bad_name_and_duplicate_fields_are_named() -> None:
    fields = (*STREAMING.events.fields, EventField("amount", "double"))
    events = dataclasses.replace(STREAMING.events, fields=fields)
    with pytest.raises(ContractError, match=r"name must match.*event fields repeat a name"):
        _with(name="Bad Name", streaming=dataclasses.replace(STREAMING, events=events)).validate()


def test_window_labels_and_feature_names() -> None:
    assert [Window(600, 60).label, Window(3600, 300).label, Window(90, 30).label] == ["10m", "1h", "90s"]
    group = STREAMING.groups[0]
    assert group.feature_names() == ["event_count", "amount_sum", "amount_avg", "amount_max"]


def test_shared_templates_import_nothing_from_components() -> None:
    offenders = []
    for folder in ("pipelines", "serving", "contract", "local", "infra", "monitoring"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(REPO_ROOT)}: {n}" for n in names if n.split(".")[0] == "components"]
    assert offenders == []


def test_generated_events_are_ordered_and_carry_fraud() -> None:
    events = list(load("fraud").generate(5000, 1_000_000, 3))
    assert len(events) == 5000
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    verdicts = {e["transaction_id"]: e["is_fraud"] for e in events if e["kind"] == "resolution"}
    resolved = [e for e in events if e["kind"] == "transaction" and e["transaction_id"] in verdicts]
    fraud = [e for e in resolved if verdicts[e["transaction_id"]]]
    assert 0.005 < len(fraud) / len(resolved) < 0.1
    # Fraud is larger than the usual spend: real signal for a model to learn.
    assert sum(e["amount"] for e in fraud) / len(fraud) > 1.5 * sum(e["amount"] for e in resolved) / len(resolved)
    assert Path(REPO_ROOT / "components" / "fraud" / "__init__.py").exists()


def test_both_domains_are_discovered() -> None:
    assert {"fraud", "demand"} <= set(available())


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (ResourceHints(serving=WorkloadHint("half", "1Gi")), "resources.serving.cpu 'half' is not a CPU quantity"),
        (ResourceHints(training=WorkloadHint("1", "2GB")), "resources.training.memory '2GB' is not a memory quantity"),
        (
            ResourceHints(streaming=WorkloadHint("1", "1Gi", replicas=0)),
            "streaming.replicas must be a positive integer",
        ),
    ],
)
def test_bad_resource_hints_are_named(resources: ResourceHints, message: str) -> None:
    with pytest.raises(ContractError, match=f"component 'fraud': .*{message}"):
        _with(resources=resources).validate()


def test_a_model_reading_an_undefined_feature_group_is_named() -> None:
    fraud = load("fraud")
    model = dataclasses.replace(fraud.model, feature_groups=("card_10m", "card_1d"))
    with pytest.raises(ContractError, match="model reads feature group 'card_1d', which streaming does not define"):
        _with(model=model).validate()


def _group(**changes: Any) -> FeatureGroup:
    return dataclasses.replace(STREAMING.groups[0], **changes)


_EVENTS = STREAMING.events


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"events": dataclasses.replace(_EVENTS, fields=(*_EVENTS.fields, EventField("n", cast(Any, "int"))))},
            "event field 'n': type 'int' is not one of string, long, double, boolean",
        ),
        (
            {"groups": (_group(aggregates=(Aggregate(cast(Any, "median"), "amount"),)),)},
            "feature group 'card_10m': aggregate function 'median' is not one of count, sum, avg, min, max",
        ),
        ({"watermark_s": -1}, r"streaming.watermark_s must be a non-negative integer \(seconds\), not -1"),
        ({"partitions": 0}, "streaming.partitions must be a positive integer, not 0"),
        ({"events": {"fields": ()}}, "streaming.events must be an EventSchema, not dict"),
        ({"groups": (_group(window=(600, 60)),)}, r"feature group 'card_10m': window must be a Window.*not tuple"),
        ({"groups": (_group(aggregates=()),)}, "feature group 'card_10m' declares no aggregates"),
        ({"groups": ({"name": "g"},)}, "streaming.groups holds a dict, not a FeatureGroup"),
    ],
)
def test_wrong_types_and_values_in_streaming_are_named(changes: dict[str, Any], message: str) -> None:
    broken = _with(streaming=dataclasses.replace(STREAMING, **changes))
    with pytest.raises(ContractError, match=f"^component 'fraud': .*{message}"):
        broken.validate()


def test_every_problem_is_reported_at_once() -> None:
    streaming = dataclasses.replace(STREAMING, watermark_s=-1, partitions=0)
    with pytest.raises(ContractError) as raised:
        _with(name="Bad", streaming=streaming).validate()
    assert str(raised.value).count("; ") == 2, raised.value


def test_a_broken_event_schema_is_named_once_not_per_group() -> None:
    events = EventSchema(fields=cast(Any, ({"name": "card_id"},)), event_time="event_time")
    with pytest.raises(ContractError) as raised:
        _with(streaming=dataclasses.replace(STREAMING, events=events)).validate()
    assert "event fields hold a dict, not an EventField" in str(raised.value)
    assert "is not an event field" not in str(raised.value)


def test_two_keys_that_become_the_same_feast_entity_are_named() -> None:
    # `card` and `card_id` would both become Feast entity `card`, with two different join keys.
    transaction, *others = _EVENTS.kinds
    events = dataclasses.replace(
        _EVENTS,
        fields=(*_EVENTS.fields, EventField("card", "string")),
        kinds=(dataclasses.replace(transaction, fields=(*transaction.fields, "card")), *others),
    )
    clash = FeatureGroup("card_alias_1h", "card", Window(3600, 300), (Aggregate("count"),), kinds=("transaction",))
    streaming = dataclasses.replace(STREAMING, events=events, groups=(*STREAMING.groups, clash))
    message = (
        "feature groups 'card_10m' (key 'card_id') and 'card_alias_1h' (key 'card') both map to Feast entity 'card'"
    )
    with pytest.raises(ContractError, match=f"^component 'fraud': {re.escape(message)}"):
        _with(streaming=streaming).validate()


def test_groups_sharing_one_key_share_one_feast_entity() -> None:
    assert feast_entity("card_id") == feast_entity("card") == "card"
    load("fraud").validate()  # card_10m and card_1h both key on card_id: one entity, no clash


def test_the_contract_names_feast_entities_as_the_feast_repo_does(tmp_path: Path) -> None:
    from feast import Entity

    from pipelines.features.feast_repo import feast_objects

    for name in ("fraud", "demand"):
        component = load(name)
        entities = {o.join_key: o.name for o in feast_objects(component, str(tmp_path)) if isinstance(o, Entity)}
        assert entities == {key: feast_entity(key) for key in entities}
        assert set(entities) == {g.entity for g in component.streaming.groups}
