"""Event producers: a component's synthetic generator, or a replay of a JSON-lines file, into ``<component>.events``.

Events are keyed by the first feature group's entity, so one entity's events stay in order on one partition.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from contract import Component
from contract.streaming import topics


def replay(path: Path) -> Iterator[dict[str, Any] | bytes]:
    """Events from a JSON-lines file; unparsable lines are sent as they are (the job dead-letters them)."""
    with path.open("rb") as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                yield line


def produce(
    component: Component,
    bootstrap: str,
    events: Iterable[dict[str, Any] | bytes],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send events (dicts, or raw bytes for deliberately malformed ones), optionally paced to ``rate``/s.

    Returns how many were sent; waits until the broker acknowledged every one.
    """
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        # log_level 2: connection errors while a broker restarts are retried, not news.
        # Idempotence: a retry after a broker crash must not append an event twice.
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "log_level": 2,
        }
    )
    topic = topics(component.name)["events"]
    key_field = component.streaming.groups[0].entity
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    began = time.monotonic()
    sent = 0
    for event in events:
        if isinstance(event, bytes):
            value, key = event, None
        else:
            value, key = json.dumps(event).encode(), str(event.get(key_field, "")).encode() or None
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if rate:
            ahead = sent / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
        if sent % 10_000 == 0:
            producer.poll(0)
            if progress:
                progress(sent)
    remaining = producer.flush(120)
    if failures or remaining:
        raise KafkaException(f"{len(failures) + remaining} of {sent} events not delivered: {failures[:3]}")
    if progress and sent % 10_000:
        progress(sent)
    return sent


def advance_watermark(component: Component, bootstrap: str, event_time_ms: int) -> None:
    """Send a watermark marker to every partition of the events topic, closing all windows that end before
    ``event_time_ms``: the end of a bounded replay, so its last windows are emitted too."""
    from confluent_kafka import Producer

    from pipelines.streaming.sql import MAX_FUTURE_S, WATERMARK_MARKER

    if event_time_ms > time.time() * 1000 + MAX_FUTURE_S * 1000:
        raise ValueError(
            f"a watermark marker at {event_time_ms} is more than {MAX_FUTURE_S}s ahead of now: "
            "the job would treat it as a bad event time and no window would close"
        )
    topic = topics(component.name)["events"]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "log_level": 3})
    partitions = producer.list_topics(topic, timeout=10).topics[topic].partitions
    marker = json.dumps({WATERMARK_MARKER: True, component.streaming.events.event_time: event_time_ms}).encode()
    for partition in partitions:
        producer.produce(topic, value=marker, partition=partition)
    if producer.flush(60):
        raise RuntimeError(f"watermark markers not delivered to {topic}")
