from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from contract.registry import load
from pipelines.features.feast_repo import FeastTarget, feast_objects, feature_store_yaml, write_repo
from pipelines.streaming import sql
from pipelines.streaming.job import latest_checkpoint, prune_checkpoints


def _spec() -> dict[str, Any]:
    component = load("fraud")
    spec: dict[str, Any] = json.loads(json.dumps(component.streaming.to_json_dict(component.name)))
    return spec


def test_job_spec_is_json_with_topics() -> None:
    spec = _spec()
    roles = ("events", "features", "dead_letter", "predictions", "labels")
    assert {role: spec["topics"][role] for role in roles} == {
        "events": "fraud.events",
        "features": "fraud.features",
        "dead_letter": "fraud.events.dlq",
        "predictions": "fraud.predictions",
        "labels": "fraud.labels",  # its verdicts arrive as resolutions
    }
    assert spec["events"]["event_time"] == "event_time"


def test_sql_uses_declared_windows_and_dead_letter_reasons() -> None:
    spec = _spec()
    groups = spec["groups"]
    insert = sql.group_insert(groups[1], spec["events"]["kind"])
    assert "INTERVAL '300' SECOND(3), INTERVAL '3600' SECOND(4)" in insert
    assert "'amount_avg', CAST(AVG(CAST(`amount` AS DOUBLE)) AS DOUBLE)" in insert
    assert "WHERE `kind` IN ('transaction')" in insert, "resolutions are not spending"
    checked = sql.checked_view(spec)
    # One parse per event, of exactly the declared fields (the reasons themselves are checked on real Flink).
    assert checked.count("parse_event(") == 1
    assert "'kind:string,transaction_id:string,card_id:string,merchant_id:string,amount:double," in checked
    source = sql.source_table(spec, "b:1", "g")
    assert "WATERMARK FOR event_ts AS event_ts - INTERVAL '5' SECOND(2)" in source
    assert "event_time_ms(payload, 'event_time')" in source
    assert "JSON_VALUE" not in source + checked


def test_latest_checkpoint_picks_the_newest_complete_one(tmp_path: Path) -> None:
    assert latest_checkpoint(f"file://{tmp_path}") is None
    for job, chk, complete in (("a", 3, True), ("b", 7, True), ("b", 8, False)):
        folder = tmp_path / job / f"chk-{chk}"
        folder.mkdir(parents=True)
        if complete:
            (folder / "_metadata").write_text("x")
    assert latest_checkpoint(f"file://{tmp_path}") == str(tmp_path / "b" / "chk-7")
    # Object storage (the cluster): the operator restores from HA metadata, the job never looks locally.
    assert latest_checkpoint(f"s3:/{tmp_path}") is None


def test_feature_store_yaml_embedded_and_cluster() -> None:
    component = load("fraud")
    embedded = yaml.safe_load(feature_store_yaml(component, FeastTarget("/s/registry.db", "127.0.0.1:6379", "/s/off")))
    assert embedded["registry"] == {"path": "/s/registry.db", "cache_ttl_seconds": 60}
    assert embedded["online_store"] == {"type": "redis", "connection_string": "127.0.0.1:6379"}
    cluster = yaml.safe_load(
        feature_store_yaml(component, FeastTarget("postgresql+psycopg://feast@pg/feast", "redis:6379", "s3://b/f"))
    )
    assert cluster["registry"]["registry_type"] == "sql"
    assert cluster["project"] == "fraud"


def test_feast_objects_follow_the_declarations(tmp_path: Path) -> None:
    from feast import FeatureView

    component = load("fraud")
    views = {o.name: o for o in feast_objects(component, str(tmp_path)) if isinstance(o, FeatureView)}
    assert sorted(views) == ["card_10m", "card_1h", "merchant_1h"]
    card = views["card_10m"]
    assert [f.name for f in card.features] == ["event_count", "amount_sum", "amount_avg", "amount_max"]
    assert card.ttl is not None and card.ttl.total_seconds() == 660
    assert card.entities == ["card"]
    write_repo(component, tmp_path / "repo", FeastTarget("r.db", "h:1", str(tmp_path)))
    assert "load('fraud')" in (tmp_path / "repo" / "definitions.py").read_text()


def test_prune_keeps_only_the_run_holding_the_restore_point(tmp_path: Path) -> None:
    for job, chk in (("a", 3), ("b", 7), ("c", 1)):
        (tmp_path / job / f"chk-{chk}").mkdir(parents=True)
        (tmp_path / job / f"chk-{chk}" / "_metadata").write_text("x")
    restore = str(tmp_path / "b" / "chk-7")
    removed = prune_checkpoints(f"file://{tmp_path}", restore)
    assert sorted(p.name for p in removed) == ["a", "c"]
    assert [p.name for p in tmp_path.iterdir()] == ["b"]
    assert latest_checkpoint(f"file://{tmp_path}") == restore
