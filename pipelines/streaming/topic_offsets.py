"""A component's stream as Kafka's offsets show it, for Prometheus: records written to each of its topics (events in,
window results out, dead letters) and each consumer group's lag. The Flink job's own metrics are its REST API's, not
Prometheus', so the feature pusher, which already serves ``/metrics``, exports these beside freshness.

Read from Kafka at scrape time (a collector, not counters kept in the loop): end offsets and committed offsets are
what the broker knows whatever process wrote them, so the series are right after a pusher restart too. A topic's end
offsets only grow (a reset recreates the topic, which Prometheus' ``rate`` treats as a counter reset), so the records
series is a counter. The Flink job commits its offsets on checkpoints, so its lag includes up to one checkpoint
interval of records it has already read.

``NAME``s and labels are plain strings here: ``monitoring.dashboards`` selects them (monitoring may import pipelines,
not the other way round).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contract.streaming import topics
from pipelines.streaming.launch import ConsumerGroups

RECORDS_NAME = "mlstack_stream_topic_records"
RECORDS_TOTAL = f"{RECORDS_NAME}_total"
RECORDS_HELP = "Records written to the component's topic (the sum of its partitions' end offsets)"
LAG = "mlstack_stream_consumer_lag"
LAG_HELP = "Records in the topic a consumer group has not committed yet (the job commits on checkpoints)"
COMPONENT, TOPIC, GROUP = "component", "topic", "consumer"
"""Labels; ``topic`` is the topic's role (``contract.streaming.topics``' key: events, features, dead_letter), and
``consumer`` the group's role (job, pusher, archive): stable across components, so one query serves every one.
(``group`` is taken: the freshness histogram's feature group.)"""
EVENTS, FEATURES, DEAD_LETTER = "events", "features", "dead_letter"
COUNTED = (EVENTS, FEATURES, DEAD_LETTER)
JOB, PUSHER, ARCHIVE = "job", "pusher", "archive"
TIMEOUT_S = 5.0


class TopicOffsets:
    """A ``prometheus_client`` collector of one component's topic records and consumer lag."""

    def __init__(self, component: str, bootstrap: str) -> None:
        self.component = component
        self.bootstrap = bootstrap
        self.topics = topics(component)
        groups = ConsumerGroups.of(component)
        self.readers = {JOB: (groups.job, EVENTS), PUSHER: (groups.pusher, FEATURES), ARCHIVE: (groups.archive, EVENTS)}

    def end_offsets(self) -> dict[str, dict[int, int]]:
        """Per topic role: partition -> end offset (a topic that does not exist yet is left out)."""
        from confluent_kafka import Consumer, TopicPartition

        # Never subscribes or commits: the group id is only required by the client.
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "mlstack-offsets", "log_level": 3})
        try:
            metadata = consumer.list_topics(timeout=TIMEOUT_S).topics
            found: dict[str, dict[int, int]] = {}
            for role in COUNTED:
                topic = metadata.get(self.topics[role])
                if topic is None or topic.error is not None:
                    continue
                found[role] = {
                    p: consumer.get_watermark_offsets(TopicPartition(topic.topic, p), timeout=TIMEOUT_S)[1]
                    for p in topic.partitions
                }
            return found
        finally:
            consumer.close()

    def lags(self, ends: dict[str, dict[int, int]]) -> dict[str, int]:
        """Per consumer role: records of its topic not committed by its group."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})
        lags = {}
        for role, (group, topic_role) in self.readers.items():
            end = ends.get(topic_role)
            if end is None:
                continue
            request = ConsumerGroupTopicPartitions(group, [TopicPartition(self.topics[topic_role], p) for p in end])
            result = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT_S)
            committed = {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}
            lags[role] = sum(end[p] - committed.get(p, 0) for p in end)
        return lags

    def collect(self) -> Iterator[Any]:
        from confluent_kafka import KafkaException
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        records = CounterMetricFamily(RECORDS_NAME, RECORDS_HELP, labels=(COMPONENT, TOPIC))
        lag = GaugeMetricFamily(LAG, LAG_HELP, labels=(COMPONENT, GROUP, TOPIC))
        try:
            ends = self.end_offsets()
            lags = self.lags(ends)
        except KafkaException as error:  # Kafka away: no sample this scrape (absent, not zero), the pusher goes on
            print(f"topic offsets not read: {error}", flush=True)
            ends, lags = {}, {}
        for role, end in ends.items():
            records.add_metric((self.component, role), float(sum(end.values())))
        for role, value in lags.items():
            lag.add_metric((self.component, role, self.readers[role][1]), float(value))
        yield records
        yield lag

    def describe(self) -> list[Any]:
        """Nothing at registration: ``collect`` would reach Kafka while the registry is being built."""
        return []
