"""The monitor exporter's Kafka reading: both of its topics through one consumer, each partition from a point in time
(so a restarted exporter rebuilds its windows), with a check that what the topics held at start has been read."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

log = logging.getLogger("monitoring.exporter")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TopicReader:
    """Both topics through one confluent-kafka consumer, each partition read from ``since_ms``; a topic that does
    not exist yet (the monitor job not started) is looked for again at each ``assign``."""

    def __init__(self, bootstrap: str, group: str, names: Sequence[str]) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,  # positions come from time at each start, never from the group
                "auto.offset.reset": "latest",
                "log_level": 3,
            }
        )
        self.names = list(names)
        self.assigned: set[str] = set()
        self.backlog: dict[tuple[str, int], int] = {}
        """(topic, partition) -> the end offset when it was assigned, until the consumer has read that far."""

    def assign(self, since_ms: int) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        missing = [name for name in self.names if name not in self.assigned]
        if not missing:
            return
        try:
            existing = self.consumer.list_topics(timeout=10).topics
        except KafkaException as error:
            log.warning("cannot list topics (retried next slide): %s", error)
            return
        wanted = [
            TopicPartition(name, p, since_ms)
            for name in missing
            if name in existing and existing[name].error is None
            for p in existing[name].partitions
        ]
        if not wanted:
            log.info("waiting for %s to exist", ", ".join(missing))
            return
        offsets = self.consumer.offsets_for_times(wanted, timeout=30)
        self.consumer.incremental_assign(offsets)
        for tp in offsets:
            if tp.offset >= 0:  # a record at or after since_ms exists: read up to today's end before sliding
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
                self.backlog[(tp.topic, tp.partition)] = high
        found = sorted({tp.topic for tp in offsets})
        self.assigned.update(found)
        log.info("reading %s from %s UTC", ", ".join(found), time.strftime("%H:%M:%S", time.gmtime(since_ms / 1000)))
        absent = [name for name in missing if name not in self.assigned]
        if absent:
            log.info("waiting for %s to exist", ", ".join(absent))

    def caught_up(self) -> bool:
        """Whether every partition has been read up to where it ended when assigned (a window published before
        would lack part of what a restart reads again)."""
        from confluent_kafka import TopicPartition

        if self.backlog:
            positions = self.consumer.position([TopicPartition(t, p) for t, p in self.backlog])
            for tp in positions:
                if tp.offset >= self.backlog[(tp.topic, tp.partition)]:
                    del self.backlog[(tp.topic, tp.partition)]
        return not self.backlog

    def poll(self, timeout_s: float) -> list[tuple[str, bytes | None]]:
        records = []
        for message in self.consumer.consume(500, timeout=timeout_s):
            if message.error() is not None:
                log.warning("kafka: %s", message.error())
                continue
            records.append((str(message.topic()), message.value()))
        return records

    def close(self) -> None:
        self.consumer.close()
