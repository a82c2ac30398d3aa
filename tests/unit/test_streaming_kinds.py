"""A stream of several event kinds with labels of their own: the job's SQL, its topics and the archive's checks.
The dead-letter reasons and counts themselves are checked on real Flink (tests/local/test_streaming_kinds.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.registry import load
from infra.use_cases.streaming import kafka_topics
from pipelines.streaming import sql
from pipelines.streaming.event_archive import conforms
from tests.support.kinds_component import component as parcels
from tests.support.one_kind import one_kind


def _spec(component: Any = parcels) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(json.dumps(component.streaming.to_json_dict(component.name)))
    return spec


def test_events_are_parsed_per_kind_with_the_fields_each_carries() -> None:
    checked = sql.checked_view(_spec())
    assert checked.count("parse_event(") == 1
    # The declared fields, the kind field, and per kind every field it must carry (kind and event time too).
    assert "'kind:string,order_id:string,shop_id:string,courier_id:string,amount:double,late:long," in checked
    assert (
        "'kind', 'placed:kind event_time order_id shop_id courier_id amount;"
        "delivered:kind event_time order_id courier_id late')" in checked
    )


def test_a_group_with_kinds_aggregates_only_those_kinds() -> None:
    spec = _spec()
    groups = {g["name"]: g for g in spec["groups"]}
    shops = sql.group_insert(groups["shop_10m"], "kind")
    assert "WHERE `kind` IN ('placed')" in shops
    assert shops.index("WHERE") > shops.index("HOP(") and shops.index("WHERE") < shops.index("GROUP BY")
    assert "WHERE `kind` IN ('delivered')" in sql.group_insert(groups["courier_10m"], "kind")
    assert "WHERE" not in sql.group_insert(groups["courier_all_10m"], "kind")
    with pytest.raises(ValueError, match=r"shop_10m.*no kind field"):
        sql.group_insert(groups["shop_10m"])


def test_labels_go_to_their_own_topic_with_generic_field_names() -> None:
    spec = _spec()
    assert spec["topics"]["labels"] == "parcels.labels"
    sink = sql.labels_sink(spec, "b:1")
    assert "`key` STRING, `label` BIGINT, `event_time` BIGINT" in sink
    assert "'topic' = 'parcels.labels'" in sink and "'key.fields' = 'key'" in sink
    assert "'sink.delivery-guarantee' = 'at-least-once'" in sink
    insert = sql.labels_insert(spec)
    assert insert == (
        "INSERT INTO labels_out SELECT CAST(`order_id` AS STRING), `late`, `event_time` "
        "FROM events_ok WHERE `kind` = 'delivered'"
    )


def test_single_kind_components_keep_their_sql() -> None:
    for name in ("fraud", "demand"):
        spec = _spec(one_kind(load(name)))
        assert "labels" not in spec["topics"]
        checked = sql.checked_view(spec)
        declared = ",".join(f"{f['name']}:{f['type']}" for f in spec["events"]["fields"])
        assert f"parse_event(payload, '{declared}') AS e" in checked
        for group in spec["groups"]:
            assert sql.group_insert(group, spec["events"]["kind"]) == sql.group_insert(group)
            assert "WHERE" not in sql.group_insert(group)


def test_the_cluster_creates_the_labels_topic_only_when_declared() -> None:
    topics = kafka_topics(parcels, "kafka", "mlstack", 3)
    assert sorted(topics) == [
        "dead-letter", "events", "features", "labels", "predictions", "predictions-dead-letter", "scored"
    ]  # fmt: skip
    labels = topics["labels"]
    assert labels["metadata"]["name"] == "parcels-labels"
    assert labels["spec"]["topicName"] == "parcels.labels"
    assert labels["spec"]["config"]["retention.ms"] == 7 * 24 * 3600 * 1000
    assert "labels" in kafka_topics(load("fraud"), "kafka", "mlstack", 3), "fraud's verdicts arrive later"
    assert sorted(kafka_topics(one_kind(load("fraud")), "kafka", "mlstack", 3)) == sorted(
        set(topics) - {"labels", "scored", "predictions-dead-letter"}  # the monitor's topics come with the labels
    )


def test_the_archive_keeps_each_kind_with_the_fields_it_carries() -> None:
    placed, delivered = (next(e for e in parcels.generate(20, 0, 3) if e["kind"] == k) for k in ("placed", "delivered"))
    assert conforms(parcels, placed) and conforms(parcels, delivered)
    assert not conforms(parcels, {**placed, "kind": "returned"}), "unknown kind"
    assert not conforms(parcels, {k: v for k, v in placed.items() if k != "kind"}), "no kind"
    assert not conforms(parcels, {k: v for k, v in delivered.items() if k != "courier_id"}), "a field of its kind"
    assert not conforms(parcels, {**delivered, "late": "yes"}), "a mistyped field of its kind"
    assert conforms(parcels, {**delivered, "amount": "not checked: not carried by deliveries"})
