"""A stream of several event kinds on real engines (Kafka -> Flink -> Feast, and the archive): each kind is parsed
with its own fields, bad ones are dead letters naming the kind, groups count only their kinds, and the label
events are published on ``<c>.labels``."""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer

from contract.registry import load
from local.services import EmbeddedServices
from local.streaming import EmbeddedStreaming
from pipelines.streaming.event_archive import read_events
from pipelines.streaming.producer import advance_watermark, produce
from tests.support.kinds_component import component as parcels
from tests.support.kinds_component import register_for_tests
from tests.support.streaming_reference import compare, offline_history, reference_windows

HOUR_MS = 3_600_000
PLACED = {"kind": "placed", "order_id": "bad", "shop_id": "shop-1", "courier_id": "courier-1", "amount": 3.0}
DELIVERED = {"kind": "delivered", "order_id": "bad", "courier_id": "courier-1", "late": 0}
# (event without its event time, the reason its dead letter must give)
BAD: list[tuple[dict[str, Any], str]] = [
    ({**PLACED, "kind": "returned"}, "unknown kind 'returned'"),
    ({k: v for k, v in PLACED.items() if k != "kind"}, "missing field kind"),
    ({k: v for k, v in DELIVERED.items() if k != "courier_id"}, "missing field courier_id (kind delivered)"),
    ({k: v for k, v in PLACED.items() if k != "amount"}, "missing field amount (kind placed)"),
    ({**DELIVERED, "late": "yes"}, "field late is not a long (kind delivered)"),
]


def _read(bootstrap: str, topic: str, at_least: int, timeout_s: float = 90) -> list[dict[str, Any]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"read-{time.time_ns()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < at_least and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                found.append({**json.loads(message.value()), "kafka_key": message.key()})
    finally:
        consumer.close()
    return found


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test component registered for this process and for the streaming workers it starts."""
    folder = register_for_tests(tmp_path_factory.mktemp("parcels-registration"))
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    yield folder
    sys.path.remove(str(folder))
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def streaming(embedded: EmbeddedServices, registered: Path) -> Iterator[EmbeddedStreaming]:
    assert load("parcels").streaming == parcels.streaming
    run = EmbeddedStreaming(embedded, parcels, flush_every_s=1.0, python_path=(str(registered),))
    run.reset(progress=print)
    run.start(progress=print)
    yield run
    run.stop()


def test_kinds_are_parsed_filtered_archived_and_their_labels_published(streaming: EmbeddedStreaming) -> None:
    bootstrap = streaming.settings.kafka_bootstrap
    start_ms = int(time.time() * 1000) - 12 * HOUR_MS
    good = list(parcels.generate(3000, start_ms, seed=5))
    mixed: list[dict[str, Any]] = []
    reasons = []
    for i, event in enumerate(good):
        mixed.append(event)
        if i % 500 == 250:
            bad, reason = BAD[(i // 500) % len(BAD)]
            mixed.append({**bad, "event_time": event["event_time"]})
            reasons.append(reason)
    assert sorted(set(reasons)) == sorted(reason for _, reason in BAD)
    assert produce(parcels, bootstrap, mixed) == len(mixed)
    advance_watermark(parcels, bootstrap, good[-1]["event_time"] + 2 * HOUR_MS)

    # Each group holds exactly the windows of its kinds' events (courier_all_10m: both kinds).
    root = streaming.feast_target.offline_root
    deadline = time.monotonic() + 240
    while True:
        problems = []
        for group in parcels.streaming.groups:
            counted = [e for e in good if not group.kinds or e["kind"] in group.kinds]
            problems += compare(reference_windows(parcels, counted, group), offline_history(root, group), group)
        if not problems:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"history differs from the kind-filtered reference ({streaming.status()}): {problems[:6]}")
        time.sleep(2)

    letters = _read(bootstrap, "parcels.events.dlq", len(reasons))
    assert sorted(letter["reason"] for letter in letters) == sorted(reasons)

    delivered = [e for e in good if e["kind"] == "delivered"]
    labels = _read(bootstrap, "parcels.labels", len(delivered))
    expected = sorted((e["order_id"], e["late"], e["event_time"]) for e in delivered)
    assert sorted((lab["key"], lab["label"], lab["event_time"]) for lab in labels) == expected
    assert all(lab["kafka_key"] == lab["key"].encode() for lab in labels), "keyed by the order id"

    # Both kinds archived, each with its own fields; the ones it does not carry are missing values.
    while streaming.status().archive_lag and time.monotonic() < deadline + 60:
        time.sleep(0.5)
    archived = read_events(root).sort_values(["event_time", "kind"], ignore_index=True)
    assert len(archived) == len(good)
    assert archived["kind"].value_counts().to_dict() == pd.Series([e["kind"] for e in good]).value_counts().to_dict()
    assert str(archived["late"].dtype) == "Int64" and str(archived["amount"].dtype) == "float64"
    placed_rows, delivered_rows = archived[archived["kind"] == "placed"], archived[archived["kind"] == "delivered"]
    assert placed_rows["late"].isna().all() and placed_rows["amount"].notna().all()
    assert delivered_rows["amount"].isna().all() and delivered_rows["shop_id"].isna().all()
    assert sorted(delivered_rows["late"].astype(int)) == sorted(e["late"] for e in delivered)
