"""Moves the streaming job's window results into Feast: every batch to the online store (push), and the history
to the offline store in parquet files for point-in-time training sets.

Kafka offsets are committed only after the history holding them is written, so a crash replays rather than
loses; replays are harmless because window results are deterministic (the online store keeps the newest window
per entity, and history is read deduplicated on entity and window end).

Every window result written online is one observation of the freshness histogram (``freshness.NAME``, per
component and group; ``freshness.py`` says from when it is measured), served on ``--metrics-port`` for Prometheus
with the stream's topic records and consumer lag (``topic_offsets.py``).
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from contract import Component
from contract.registry import load
from contract.streaming import topics
from pipelines.features.feast_repo import history_path
from pipelines.features.parts import write_part
from pipelines.streaming import freshness
from pipelines.streaming.launch import ConsumerGroups, committing_consumer
from pipelines.streaming.topic_offsets import TopicOffsets

TIMESTAMP_NOT_AVAILABLE = 0
"""``confluent_kafka.TIMESTAMP_NOT_AVAILABLE``: a record the broker gave no timestamp."""
EPOCH = pd.Timestamp(0, tz="UTC")
EMITTED = "__emitted_ms"
"""Column of a frame holding its records' Kafka timestamps (when the job emitted the window)."""


@dataclass
class PusherStats:
    """Counters and freshness (seconds from a window's close to online, see ``freshness.py``), written to the
    ``--stats`` file for the demo and the benchmark; Prometheus gets the histogram."""

    rows_online: int = 0
    """Rows written to the online store (the newest window per entity of each batch)."""
    rows_windows: int = 0
    """Window results received."""
    rows_offline: int = 0
    batches: int = 0
    push_seconds: float = 0.0
    freshness_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    """Every window written online, live or from a backlog (those measured from their emission)."""
    live_freshness_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    """Live windows only: measured from their close (window end plus the watermark delay)."""
    live_closes: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=100_000))
    """(group, window end) of each live observation: how many window closes the live figures rest on."""
    live_pusher_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    """The pusher's share of live freshness: from the job emitting the window (Kafka timestamp) to online."""

    def summary(self) -> dict[str, float]:
        def quantile(values: deque[float], q: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

        return {
            "rows_online": self.rows_online,
            "rows_windows": self.rows_windows,
            "rows_offline": self.rows_offline,
            "batches": self.batches,
            "freshness_p50_s": quantile(self.freshness_s, 0.5),
            "freshness_p99_s": quantile(self.freshness_s, 0.99),
            "live_windows": len(self.live_freshness_s),
            "live_closes": len(set(self.live_closes)),
            "live_pusher_p50_s": quantile(self.live_pusher_s, 0.5),
            "live_pusher_p99_s": quantile(self.live_pusher_s, 0.99),
            "live_freshness_p50_s": quantile(self.live_freshness_s, 0.5),
            "live_freshness_p99_s": quantile(self.live_freshness_s, 0.99),
        }


class FeaturePusher:
    """Consumes ``<component>.features`` and writes it into the component's Feast store."""

    def __init__(
        self,
        component: Component,
        store: Any,
        bootstrap: str,
        offline_root: str,
        flush_every_s: float = 10.0,
        stats_path: Path | None = None,
        registry: Any = None,
    ) -> None:
        """``registry``: a ``prometheus_client`` registry to export freshness in (``None``: not exported)."""
        self.component = component
        self.store = store
        self.offline_root = offline_root
        self.flush_every_s = flush_every_s
        self.groups = {g.name: g for g in component.streaming.groups}
        self.entity_types = {f.name: f.type for f in component.streaming.events.fields}
        groups = ConsumerGroups.of(component.name)
        self.consumer = committing_consumer(bootstrap, groups.pusher, topics(component.name)["features"])
        self.pending_history: dict[str, list[pd.DataFrame]] = defaultdict(list)
        self.last_flush = self.registry_read = time.monotonic()
        self.stats = PusherStats()
        self.stats_path = stats_path
        self.watermark_s = float(component.streaming.watermark_s)
        self.stopping = False
        self.histograms: dict[str, Any] = {}
        if registry is not None:
            from prometheus_client import Histogram

            histogram = Histogram(
                freshness.NAME, freshness.HELP, freshness.LABELS, registry=registry, buckets=freshness.BUCKETS
            )
            # Every group's series from the start: a group whose windows never arrive shows as zero, not absent.
            self.histograms = {name: histogram.labels(component.name, name) for name in self.groups}

    def frames(self, records: list[dict[str, Any]], emitted_ms: list[float] | None = None) -> dict[str, pd.DataFrame]:
        """Window results per feature view, typed as the view declares them; with ``emitted_ms`` (the records'
        Kafka timestamps) an ``EMITTED`` column too, which is not a feature and is dropped before writing."""
        by_view: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, record in enumerate(records):
            group = self.groups[record["feature_view"]]
            row = {group.entity: record["entity"], "window_end": record["window_end"], **record["features"]}
            if emitted_ms is not None:
                row[EMITTED] = emitted_ms[i]
            by_view[group.name].append(row)
        frames = {}
        for name, rows in by_view.items():
            group = self.groups[name]
            frame = pd.DataFrame(rows)
            if self.entity_types.get(group.entity) == "long":
                frame[group.entity] = frame[group.entity].astype("int64")
            frame["window_end"] = pd.to_datetime(frame["window_end"], utc=True, format="ISO8601")
            for aggregate in group.aggregates:
                column = aggregate.feature_name
                frame[column] = frame[column].astype("int64" if aggregate.function == "count" else "float64")
            frames[name] = frame
        return frames

    def push(self, records: list[dict[str, Any]], emitted_ms: list[float] | None = None) -> None:
        """Write ``records`` online (history later, at the next flush) and observe their freshness."""
        began = time.monotonic()
        emitted = [float("nan")] * len(records) if emitted_ms is None else emitted_ms
        for name, with_emitted in self.frames(records, emitted).items():
            frame = with_emitted.drop(columns=EMITTED)
            # The online store keeps one row per entity, the newest window: older windows of the same batch
            # would be written only to be replaced (Feast converts and writes row by row, the costly part).
            # History gets every row.
            entity = self.groups[name].entity
            order = frame["window_end"].argsort(kind="stable")
            keep = ~frame[entity].iloc[order].duplicated(keep="last").to_numpy()
            newest = frame.iloc[order[keep]]
            # Straight to the group's view: the group's push source feeds exactly that view (feast_repo), and
            # Feast's push() lists every view of the registry on each call to find it (a fifth of a push's time).
            self.store.write_to_online_store(name, newest)
            self.observe(name, newest["window_end"], with_emitted[EMITTED].iloc[order[keep]].to_numpy())
            self.pending_history[name].append(frame)
            self.stats.rows_online += len(newest)
            self.stats.rows_windows += len(frame)
        self.stats.push_seconds += time.monotonic() - began
        self.stats.batches += 1

    def observe(self, group: str, window_end: pd.Series, emitted_ms: Any) -> None:
        """One freshness observation per window result just written online (``freshness.py`` defines it)."""
        ends = (window_end - EPOCH).dt.total_seconds().to_numpy()
        online = time.time()
        seconds, live = freshness.freshness_s(ends, emitted_ms / 1000.0, online, self.watermark_s)
        self.stats.freshness_s.extend(seconds.tolist())
        self.stats.live_freshness_s.extend(seconds[live].tolist())
        pusher = online - emitted_ms[live] / 1000.0
        self.stats.live_pusher_s.extend(pusher[~np.isnan(pusher)].tolist())
        self.stats.live_closes.extend((group, end) for end in set(ends[live].tolist()))
        histogram = self.histograms.get(group)
        if histogram is not None:
            for value in seconds.tolist():
                histogram.observe(value)

    def refresh_registry(self) -> None:
        """Re-read Feast's registry at half its cache TTL, from an idle poll: once the cache expires, the next
        write reads it again, and that write would be a window held up."""
        ttl = float(getattr(self.store.config.registry, "cache_ttl_seconds", 0) or 0)
        if ttl > 0 and time.monotonic() - self.registry_read >= ttl / 2:
            self.store.refresh_registry()
            self.registry_read = time.monotonic()

    def flush_history(self) -> None:
        """Write pending history as one parquet file per view, then commit the offsets it covers."""
        for name, frames in self.pending_history.items():
            if not frames:
                continue
            frame = pd.concat(frames, ignore_index=True)
            write_part(frame, history_path(self.offline_root, self.groups[name]))
            self.stats.rows_offline += len(frame)
        self.pending_history.clear()
        self.last_flush = time.monotonic()
        if self.stats_path:
            self.stats_path.write_text(json.dumps(self.stats.summary()))
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as error:
            # The history is written; committing later (or replaying these rows after a crash) is harmless.
            print(f"offset commit deferred: {error}", flush=True)

    def run_once(self, max_records: int = 20_000, timeout_s: float = 0.05) -> int:
        """One poll -> push cycle; returns the number of records handled.

        Live, a poll returns what arrived within ``timeout_s``; on a backlog, ``max_records`` at once: every push
        has a fixed cost in Feast, and a bigger batch holds more windows per entity of which only the newest is
        written online."""
        messages = self.consumer.consume(num_messages=max_records, timeout=timeout_s)
        records, emitted_ms = [], []
        for message in messages:
            error = message.error()
            if error is not None:
                # Transient (a broker restarting): librdkafka reconnects by itself; fatal ones end the process.
                if error.fatal():
                    raise RuntimeError(f"feature topic read failed: {error}")
                print(f"feature topic: {error} (retrying)", flush=True)
                continue
            value = message.value()
            if value is not None:
                records.append(orjson.loads(value))
                kind, stamp = message.timestamp()
                emitted_ms.append(float(stamp) if kind != TIMESTAMP_NOT_AVAILABLE else float("nan"))
        if records:
            self.push(records, emitted_ms)
        # History and the offset commit wait for a poll that found nothing (live windows arrive in bursts, one
        # per close), so a window is never held up behind a parquet write and a commit; on a backlog, whose polls
        # are never empty, they come at twice the period.
        if not records:
            self.refresh_registry()
        since = time.monotonic() - self.last_flush
        if self.pending_history and (since >= 2 * self.flush_every_s or (since >= self.flush_every_s and not records)):
            self.flush_history()
        return len(records)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        last_report = time.monotonic()
        try:
            while not self.stopping:
                self.run_once()
                if time.monotonic() - last_report >= 10:
                    print(f"pusher: {self.stats.summary()}", flush=True)
                    last_report = time.monotonic()
        finally:
            self.flush_history()
            self.consumer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Push a component's streaming features into Feast.")
    parser.add_argument("--component", required=True)
    parser.add_argument("--repo", required=True, help="the component's Feast repo folder")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--offline-root", required=True)
    parser.add_argument("--flush-every-s", type=float, default=10.0)
    parser.add_argument("--stats", type=Path, help="where to write counters and freshness after each flush")
    parser.add_argument("--metrics-port", type=int, help="serve freshness, topic records and lag on /metrics here")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address /metrics listens on")
    args = parser.parse_args(argv)

    from feast import FeatureStore
    from prometheus_client import CollectorRegistry, start_http_server

    component = load(args.component)
    store = FeatureStore(repo_path=args.repo)
    registry = None
    if args.metrics_port is not None:
        registry = CollectorRegistry()
        # The stream's topic records and consumer lag beside freshness (the Flink job has no Prometheus endpoint).
        registry.register(TopicOffsets(component.name, args.bootstrap))
        start_http_server(args.metrics_port, args.metrics_host, registry=registry)
    print(f"pushing {topics(component.name)['features']} into Feast project {component.name}", flush=True)
    pusher = FeaturePusher(
        component, store, args.bootstrap, args.offline_root, args.flush_every_s, args.stats, registry=registry
    )
    pusher.run()


if __name__ == "__main__":
    main()
