"""Kafka -> Flink -> Feast on real engines: features equal a pandas reference, survive a broker and a job crash,
and malformed events become dead letters without disturbing the rest."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer

from contract import Component
from contract.registry import load
from contract.streaming import topics
from local.services import EmbeddedServices
from local.streaming import EmbeddedStreaming
from pipelines.streaming.event_archive import read_events
from pipelines.streaming.producer import advance_watermark, produce
from tests.support.streaming_reference import compare, offline_history, reference_windows

HOUR_MS = 3_600_000
MALFORMED: list[tuple[bytes | dict[str, Any], str]] = [
    (b"{not json at all", "invalid JSON"),
    (b"[1, 2, 3]", "invalid JSON"),
    (
        {
            "kind": "transaction",
            "transaction_id": "x1",
            "card_id": "card-0001",
            "merchant_id": "m-001",
            "channel": "pos",
            "event_time": 0,
        },
        "missing field amount (kind transaction)",
    ),
    (
        {
            "kind": "transaction",
            "transaction_id": "x2",
            "card_id": "card-0001",
            "merchant_id": "m-001",
            "amount": "lots",
            "channel": "pos",
            "event_time": 0,
        },
        "field amount is not a double (kind transaction)",
    ),
    (
        {
            "kind": "transaction",
            "transaction_id": "x3",
            "card_id": "card-0001",
            "merchant_id": "m-001",
            "amount": 3.5,
            "channel": "pos",
            "event_time": "yesterday",
        },
        "field event_time is not a long (kind transaction)",
    ),
]


class StreamRun:
    """The fraud component streaming on the session's services, and every good event sent so far."""

    def __init__(self, services: EmbeddedServices) -> None:
        self.component: Component = load("fraud")
        self.services = services
        self.streaming = EmbeddedStreaming(services, self.component, flush_every_s=1.0)
        self.bootstrap = services.settings.kafka_bootstrap
        self.good: list[dict[str, Any]] = []
        # Far enough back that every marker (two hours past each batch) is still in the past: the job ignores
        # event times ahead of the broker's clock.
        self.clock_ms = self.first_ms = int(time.time() * 1000) - 12 * HOUR_MS

    def events(self, n: int, seed: int) -> list[dict[str, Any]]:
        batch = list(self.component.generate(n, self.clock_ms, seed))
        self.clock_ms = batch[-1]["event_time"] + 1
        self.good += batch
        return batch

    def close_windows(self) -> None:
        """Markers two hours past the last event: every window holding an event closes."""
        self.clock_ms += 2 * HOUR_MS
        advance_watermark(self.component, self.bootstrap, self.clock_ms)

    def wait_for_reference(self, timeout_s: float = 240) -> None:
        root = self.streaming.feast_target.offline_root
        deadline = time.monotonic() + timeout_s
        while True:
            problems = [
                p
                for group in self.component.streaming.groups
                for p in compare(
                    reference_windows(self.component, self.good, group), offline_history(root, group), group
                )
            ]
            if not problems:
                return
            if time.monotonic() > deadline:
                status = self.streaming.status()
                pytest.fail(f"offline history does not match the reference ({status}):\n" + "\n".join(problems[:6]))
            time.sleep(2)

    def assert_online_matches(self, sample: int = 25) -> None:
        store = self.streaming.feature_store()
        for group in self.component.streaming.groups:
            expected = reference_windows(self.component, self.good, group)
            latest = expected.sort_values("window_end").groupby(group.entity).tail(1).head(sample)
            refs = [f"{group.name}:{name}" for name in group.feature_names()]
            online = store.get_online_features(
                features=refs, entity_rows=[{group.entity: e} for e in latest[group.entity]], full_feature_names=True
            ).to_df()
            for name in group.feature_names():
                assert (
                    online[f"{group.name}__{name}"].astype(float).round(9).tolist()
                    == latest[name].astype(float).round(9).tolist()
                ), f"online {group.name}.{name} differs from the newest reference window"


@pytest.fixture(scope="module")
def stream(embedded: EmbeddedServices) -> Iterator[StreamRun]:
    run = StreamRun(embedded)
    run.streaming.start(progress=print)
    yield run
    run.streaming.stop()


def test_features_match_reference_online_and_offline(stream: StreamRun) -> None:
    sent = produce(stream.component, stream.bootstrap, stream.events(6000, seed=11))
    assert sent == 6000
    stream.close_windows()
    stream.wait_for_reference()
    stream.assert_online_matches()
    status = stream.streaming.status()
    assert status.job_state == "RUNNING"
    assert status.events_in_topic >= 6000
    # Every event is also archived once, for training's labelled examples.
    deadline = time.monotonic() + 60
    while stream.streaming.status().archive_lag and time.monotonic() < deadline:
        time.sleep(0.5)
    archived = read_events(stream.streaming.feast_target.offline_root)
    assert sorted(archived["transaction_id"]) == sorted(e["transaction_id"] for e in stream.good)


def test_malformed_events_become_dead_letters_and_good_ones_still_count(stream: StreamRun) -> None:
    before = stream.streaming.status().dead_letters
    good = stream.events(1000, seed=12)
    mixed: list[bytes | dict[str, Any]] = []
    for i, event in enumerate(good):
        mixed.append(event)
        if i % 200 == 0:
            mixed.append(MALFORMED[(i // 200) % len(MALFORMED)][0])
    late = {**good[0], "transaction_id": "late-1", "event_time": stream.clock_ms - 4 * HOUR_MS}
    produce(stream.component, stream.bootstrap, mixed)
    stream.close_windows()
    produce(stream.component, stream.bootstrap, [late])
    stream.wait_for_reference()

    consumer = Consumer(
        {"bootstrap.servers": stream.bootstrap, "group.id": "dlq-test", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topics("fraud")["dead_letter"]])
    letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(letters) < before + 6 and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and not message.error():
            letters.append(json.loads(message.value()))
    consumer.close()
    # Dead letters keep their source partition's order, not the global one: compare as multisets.
    reasons = sorted(letter["reason"] for letter in letters[before:])
    assert reasons == sorted([reason for _, reason in MALFORMED] + ["late event (behind the watermark)"])
    assert all(letter["payload"] and letter["src_offset"] >= 0 for letter in letters)
    late_letter = next(letter for letter in letters if letter["reason"].startswith("late"))
    assert json.loads(late_letter["payload"])["transaction_id"] == "late-1"


def test_broker_and_job_crashes_lose_nothing_and_count_nothing_twice(stream: StreamRun) -> None:
    batch = stream.events(8000, seed=13)
    producer = threading.Thread(
        target=produce, args=(stream.component, stream.bootstrap, batch), kwargs={"rate": 2000}, daemon=True
    )
    producer.start()
    time.sleep(1.5)
    stream.services.kill("kafka")  # SIGKILL mid-stream
    time.sleep(2)
    stream.services.restart("kafka", progress=print)
    producer.join(180)
    assert not producer.is_alive()
    time.sleep(3)  # let the job checkpoint some of the batch, then crash it too
    stream.streaming.kill_job()
    stream.streaming.start(progress=print)
    stream.close_windows()
    stream.wait_for_reference()
    stream.assert_online_matches()


def test_reset_forgets_the_stream_and_a_restart_begins_from_nothing(stream: StreamRun) -> None:
    stream.streaming.reset(progress=print)
    card = stream.good[-1]["card_id"]
    online = (
        stream.streaming.feature_store()
        .get_online_features(features=["card_10m:event_count"], entity_rows=[{"card_id": card}])
        .to_dict()
    )
    assert online["event_count"] == [None]
    stream.streaming.start(progress=print)
    status = stream.streaming.status()
    assert (status.job_state, status.events_in_topic, status.dead_letters) == ("RUNNING", 0, 0)
    # The event times of the first batch, long closed before the reset, are welcome again: nothing is late.
    stream.good, stream.clock_ms = [], stream.first_ms
    produce(stream.component, stream.bootstrap, stream.events(500, seed=14))
    stream.close_windows()
    stream.wait_for_reference()
    assert stream.streaming.status().dead_letters == 0
