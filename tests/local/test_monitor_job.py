"""The monitor job on real engines (Kafka, Flink): delivery's served predictions and its labels, both built here in
their topics' formats, joined into ``delivery.scored`` exactly as a pandas interval join of the same records gives
(labels before a prediction by more than the watermark, or later than ``max_delay_s``, pair with nothing), and
unusable prediction records in ``delivery.predictions.dlq`` with their reasons. Its own Kafka, so no other test's
topics or consumer groups are touched."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from contract.registry import load
from local.monitor import EmbeddedMonitor
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from monitoring.monitor_sql import consumer_group

pytestmark = pytest.mark.local

COMPONENT = load("delivery")
FEEDBACK = COMPONENT.streaming.feedback
assert FEEDBACK is not None
TOPICS = {"predictions": "delivery.predictions", "labels": "delivery.labels"}
SLACK_MS = COMPONENT.streaming.watermark_s * 1000
MAX_DELAY_MS = FEEDBACK.max_delay_s * 1000
CLASSES = ("on_time", "late", "very_late")


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMonitor]:
    settings = EmbeddedSettings.on_free_ports(tmp_path_factory.mktemp("monitor-job") / "state")
    services = EmbeddedServices(settings, ["kafka"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    streaming = EmbeddedStreaming(services, COMPONENT)
    assert streaming.monitor is not None
    try:
        streaming.ensure_topics()
        streaming.write_spec()
        streaming.monitor.start(progress=print, exporter=False)
        streaming.monitor.wait_running(progress=print)
        yield streaming.monitor
    finally:
        if streaming.monitor is not None:
            streaming.monitor.stop()
        services.down(progress=lambda line: print(f"[services] {line}"))


def prediction(request_id: str, order_id: str, at_ms: int, version: str) -> dict[str, Any]:
    """One record of the inference log as a delivery server writes it (serving/README.md)."""
    scores = {"on_time": 0.6, "late": 0.3, "very_late": 0.1}
    return {
        "request_id": request_id,
        "row": 0,
        "event_time": at_ms,
        "component": "delivery",
        "model_version": version,
        "entities": {"courier_id": "courier-1", "restaurant_id": "restaurant-2", "zone_id": "zone-3"},
        "request": {"order_id": order_id, "distance_km": 3.5, "basket_value": 21.0},
        "features": {"courier_1h__event_count": 4.0, "zone_15m__event_count": None},
        "prediction": {"scores": scores, "label": "on_time"},
        "degraded": False,
    }


def build(run: str, now_ms: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[bytes, str]]]:
    """Predictions, labels (inside the bound, just before it, after it, several per key, none) and bad records."""
    start = now_ms - 600_000  # scored ten minutes ago, one a second; labels up to 70 minutes later
    predictions, labels = [], []
    offsets_ms = [
        30_000, 600_000, MAX_DELAY_MS - 1_000, MAX_DELAY_MS, MAX_DELAY_MS + 1_000, -SLACK_MS + 1_000, -SLACK_MS,
        -SLACK_MS - 1_000, -120_000, 0,
    ]  # fmt: skip
    for i in range(60):
        at = start + i * 1_000
        order = f"{run}-order-{i}"
        predictions.append(prediction(f"{run}-req-{i}", order, at, version=str(1 + i % 2)))
        if i % 6 == 5:
            continue  # never labelled
        labels.append({"key": order, "label": CLASSES[i % 3], "event_time": at + offsets_ms[i % len(offsets_ms)]})
        if i % 7 == 0:  # a second outcome for the same order, also inside the bound
            labels.append({"key": order, "label": CLASSES[(i + 1) % 3], "event_time": at + 45_000})
    # A label for an order nobody asked about.
    labels.append({"key": f"{run}-order-unserved", "label": "late", "event_time": start})
    good = prediction(f"{run}-bad", f"{run}-order-0", start, "1")
    bad = [
        (b"{not json", "invalid JSON"),
        (json.dumps({k: v for k, v in good.items() if k != "model_version"}).encode(), "missing model_version"),
        (
            json.dumps({**good, "request": {"distance_km": 1.0}}).encode(),
            "missing feedback key order_id (in entities or request)",
        ),
        (json.dumps({**good, "event_time": "soon"}).encode(), "missing or non-integer event_time"),
    ]
    return predictions, labels, bad


def reference(predictions: list[dict[str, Any]], labels: list[dict[str, Any]]) -> pd.DataFrame:
    """The pandas interval join: every label of a prediction's order within [t - watermark, t + max_delay]."""
    p = pd.DataFrame(
        {
            "request_id": [r["request_id"] for r in predictions],
            "key": [r["request"]["order_id"] for r in predictions],
            "event_time": [r["event_time"] for r in predictions],
            "model_version": [r["model_version"] for r in predictions],
        }
    )
    joined = p.merge(pd.DataFrame(labels).rename(columns={"event_time": "label_time"}), on="key")
    inside = joined["label_time"].between(joined["event_time"] - SLACK_MS, joined["event_time"] + MAX_DELAY_MS)
    return joined[inside]


def _produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every record of ``topic`` up to its current end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[tuple[bytes | None, dict[str, Any]]] = []
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            records.append((message.key(), json.loads(message.value())))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        return records
    finally:
        consumer.close()


def _lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of ``topic`` the group has not committed, -1 while that is not known. (A consumer's ``committed``:
    the admin client's ``list_consumer_group_offsets`` crashed this process for a group that had not committed.)"""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)
    except KafkaException:  # the group's coordinator is still loading: not known yet
        return -1
    finally:
        consumer.close()


def _wait_consumed(monitor: EmbeddedMonitor, timeout_s: float = 300) -> None:
    """Until the job's group committed every input record: offsets commit when a checkpoint completes, and the
    sinks flush on that checkpoint, so everything the input produces is in the output topics by then."""
    bootstrap, group = monitor.settings.kafka_bootstrap, consumer_group("delivery")
    deadline = time.monotonic() + timeout_s
    while True:
        lags = {topic: _lag(bootstrap, group, topic) for topic in TOPICS.values()}
        if not any(lags.values()):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"the monitor did not consume its input in {timeout_s:.0f}s (lag {lags}): {monitor.job_state()}"
            )
        time.sleep(1)


def test_scored_holds_exactly_the_interval_join_and_bad_predictions_are_dead_letters(
    monitor: EmbeddedMonitor,
) -> None:
    bootstrap = monitor.settings.kafka_bootstrap
    run = uuid.uuid4().hex[:8]
    predictions, labels, bad = build(run, int(time.time() * 1000))
    _produce(bootstrap, TOPICS["labels"], [(lab["key"], json.dumps(lab).encode()) for lab in labels])
    log = [(r["request_id"], json.dumps(r).encode()) for r in predictions] + [(f"{run}-bad", b) for b, _ in bad]
    _produce(bootstrap, TOPICS["predictions"], log)
    _wait_consumed(monitor)

    scored = [(key, r) for key, r in _read_all(bootstrap, "delivery.scored") if r["request_id"].startswith(run)]
    expected = reference(predictions, labels)
    got = sorted((r["request_id"], r["key"], r["event_time"], r["label_time"], r["label"]) for _, r in scored)
    want = sorted(
        expected[["request_id", "key", "event_time", "label_time", "label"]].itertuples(index=False, name=None)
    )
    assert got == [tuple(row) for row in want]
    assert 0 < len(want) < len(labels), "the bound both keeps and drops labels"
    by_request = {r["request_id"]: r for r in predictions}
    for key, record in scored:
        served = by_request[record["request_id"]]
        assert key == record["request_id"].encode(), "keyed by the request id"
        assert record["prediction"] == served["prediction"], "the prediction as logged"
        assert (record["row"], record["model_version"]) == (served["row"], served["model_version"])

    letters = [
        r
        for _, r in _read_all(bootstrap, "delivery.predictions.dlq")
        if run in r["payload"] or r["payload"] == "{not json"
    ]
    assert sorted(r["reason"] for r in letters) == sorted(reason for _, reason in bad)
