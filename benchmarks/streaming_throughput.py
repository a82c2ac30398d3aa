"""Streaming features: Kafka -> Flink -> Feast against the hand-written alternative, measured in one run.

1. Throughput: a backlog of N events (plus watermark markers) drained into the Feast online store, by
   (a) the Flink job + Feast pusher, and (b) one Python consumer aggregating the same windows in memory and
   pushing closed windows to Feast, which is what a user would otherwise write by hand. Both must end with the
   same window results; the table reports events/s for each and their ratio, over the whole backlog (start-up
   included) and sustained (once start-up is behind: the rate a long-running job keeps).
2. Freshness on live streams at 1,000 and 5,000 events/s (events stamped with the wall clock): seconds from a
   window's close (its end plus the watermark delay, ``pipelines.streaming.freshness``) until its row is in the
   online store, p50 and p99 over every window row written online, for both paths in the same run, with the
   number of window closes they rest on. On fraud with 1 s slides (``support.short_slides``): fraud's own
   one- and five-minute slides give a minute-long run one close, and a p99 over one close is one batch's.

Prints tables; asserts nothing. `make bench` or `PYTHONPATH=. .venv/bin/python benchmarks/streaming_throughput.py
[N] [--part throughput|freshness] [--rates 1000 5000] [--seconds 70]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from benchmarks.support import short_slides
from contract import Component
from contract.registry import load
from contract.streaming import topics
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from pipelines.features.feast_repo import push_source_name
from pipelines.streaming.producer import advance_watermark, produce
from tests.support.streaming_reference import offline_history, reference_windows

console = Console(width=140)


def _services(state: Path) -> EmbeddedServices:
    settings = EmbeddedSettings.on_free_ports(state)
    services = EmbeddedServices(settings, ["kafka", "redis"])
    services.up(progress=lambda _line: None)
    return services


class HandWrittenConsumer:
    """The peer: one Python process, in-memory hop windows, pushes each closed window to the online store."""

    def __init__(self, component: Component, store: Any, bootstrap: str) -> None:
        from confluent_kafka import Consumer

        self.component = component
        self.store = store
        self.spec = component.streaming
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"handwritten-{time.time_ns()}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topics(component.name)["events"]])
        self.windows: dict[str, dict[tuple[Any, int], list[float]]] = {g.name: {} for g in self.spec.groups}
        self.partition_time: dict[int, int] = {}
        self.pushed_rows = 0
        self.progress: list[tuple[float, int]] = []
        self.freshness: list[tuple[float, tuple[str, pd.Timestamp]]] = []
        """Seconds from close to online of each window row written online, with its close (group, window end)."""

    def _add(self, event: dict[str, Any]) -> None:
        at, kind = event[self.spec.events.event_time], event.get(self.spec.events.kind or "")
        for group in self.spec.groups:
            if group.kinds and kind not in group.kinds:
                continue  # as the job does: a group counts only its kinds (fraud's transactions, not resolutions)
            size, slide = group.window.size_s * 1000, group.window.slide_s * 1000
            latest = (at // slide) * slide
            amount = float(event.get("amount", 0.0))
            for k in range(size // slide):
                acc = self.windows[group.name].setdefault(
                    (event[group.entity], latest - k * slide + size), [0, 0.0, -1e308]
                )
                acc[0] += 1
                acc[1] += amount
                acc[2] = max(acc[2], amount)

    def _emit(self, watermark: int) -> None:
        from feast.data_source import PushMode

        for group in self.spec.groups:
            closed = [key for key in self.windows[group.name] if key[1] <= watermark]
            if not closed:
                continue
            rows = []
            for key in closed:
                count, total, top = self.windows[group.name].pop(key)
                rows.append(
                    {
                        group.entity: key[0],
                        "window_end": key[1],
                        "event_count": int(count),
                        "amount_sum": total,
                        "amount_avg": total / count,
                        "amount_max": top,
                    }
                )
            frame = pd.DataFrame(rows)
            frame["window_end"] = pd.to_datetime(frame["window_end"], unit="ms", utc=True)
            # Same courtesy as the pusher: only the newest window per entity is worth an online write.
            newest = frame.sort_values("window_end").drop_duplicates(group.entity, keep="last")
            self.store.push(push_source_name(self.component, group), newest, to=PushMode.ONLINE)
            now = pd.Timestamp.now(tz="UTC")
            lateness = pd.Timedelta(seconds=self.spec.watermark_s)
            ages = (now - (newest["window_end"] + lateness)).dt.total_seconds()
            self.freshness += [(age, (group.name, end)) for age, end in zip(ages, newest["window_end"], strict=True)]
            self.pushed_rows += len(frame)
        self.progress.append((time.monotonic(), self.pushed_rows))

    def run(self, expected_rows: int, timeout_s: float) -> float:
        """Consume until ``expected_rows`` window rows were pushed; returns the seconds it took."""
        began = time.monotonic()
        marker = "__watermark__"
        while self.pushed_rows < expected_rows and time.monotonic() - began < timeout_s:
            for message in self.consumer.consume(5000, 0.2):
                if message.error():
                    continue
                event = json.loads(message.value())
                if marker not in event:
                    self._add(event)
                self.partition_time[message.partition()] = max(
                    self.partition_time.get(message.partition(), 0), event[self.spec.events.event_time]
                )
            if self.partition_time:
                self._emit(min(self.partition_time.values()) - self.spec.watermark_s * 1000)
        self.consumer.close()
        return time.monotonic() - began


def _expected_rows(component: Component, events: list[dict[str, Any]]) -> int:
    return sum(len(reference_windows(component, events, g)) for g in component.streaming.groups)


def sustained_rate(progress: list[tuple[float, int]], expected_rows: int, n_events: int) -> float:
    """Events/s from a quarter to nine tenths of the window rows: the rate once start-up is behind (a JVM's JIT
    warm-up, first fetches) and before the last windows wait for the final watermark. Window rows follow event
    time evenly, so their share stands for the share of events."""
    first = next((t, rows) for t, rows in progress if rows >= expected_rows / 4)
    last = next((t, rows) for t, rows in progress if rows >= expected_rows * 0.9)
    if last[0] <= first[0]:
        return float("nan")
    return (last[1] - first[1]) / expected_rows * n_events / (last[0] - first[0])


def throughput(n_events: int, parallelism: int = 1) -> list[tuple[str, float, float, float]]:
    component = load("fraud")
    with tempfile.TemporaryDirectory() as state:
        services = _services(Path(state))
        try:
            streaming = EmbeddedStreaming(services, component, flush_every_s=1.0, parallelism=parallelism)
            streaming.ensure_topics()
            events = list(component.generate(n_events, 0, 7))
            # Shifted so the backlog ends four hours ago: the final watermark marker must not be in the future.
            shift = int(time.time() * 1000) - 4 * 3600 * 1000 - events[-1]["event_time"]
            events = [{**event, "event_time": event["event_time"] + shift} for event in events]
            began = time.monotonic()
            produce(component, services.settings.kafka_bootstrap, events)
            produce_rate = n_events / (time.monotonic() - began)
            advance_watermark(component, services.settings.kafka_bootstrap, events[-1]["event_time"] + 3 * 3600 * 1000)
            expected = _expected_rows(component, events)
            console.print(
                f"backlog: {n_events} events ({produce_rate:.0f}/s produced), {expected} window rows expected"
            )

            # (a) Flink + pusher: timed from the job reporting RUNNING to the last row in the store, with the
            # progress of the job alone (window results in the features topic) and of the pusher sampled on the way.
            # The event archive (raw events to the offline store for labels) is not on this path: it is stopped so
            # the two cores go to Kafka, Flink and the pusher, as the peer gets them to itself.
            streaming.start(progress=lambda _line: None)
            streaming.services.daemon.stop(streaming.archive_program)
            began = time.monotonic()
            job_progress: list[tuple[float, int]] = []
            push_progress: list[tuple[float, int]] = []
            while not push_progress or push_progress[-1][1] < expected:
                now = time.monotonic()
                job_progress.append((now, sum(streaming._end_offsets(topics(component.name)["features"]).values())))
                push_progress.append((now, int(streaming.pusher_stats().get("rows_windows", 0))))
                if now - began > 900:
                    raise RuntimeError("Flink path did not finish in 15 minutes")
                time.sleep(0.25)
            flink_s = time.monotonic() - began
            job_s = next(t for t, rows in job_progress if rows >= expected) - began
            streaming.stop()
            root = streaming.feast_target.offline_root
            history = sum(len(offline_history(root, g)) for g in component.streaming.groups)
            if history != expected:
                raise RuntimeError(f"Flink path wrote {history} window rows to history, expected {expected}")

            # (b) the hand-written consumer over the same backlog.
            peer = HandWrittenConsumer(component, streaming.feature_store(), services.settings.kafka_bootstrap)
            peer_s = peer.run(expected, 900)
        finally:
            services.down(progress=lambda _line: None)
    return [
        (
            "Flink job + Feast pusher (into the online store)",
            n_events / flink_s,
            sustained_rate(push_progress, expected, n_events),
            flink_s,
        ),
        (
            "  of which: Flink job alone (into the features topic)",
            n_events / job_s,
            sustained_rate(job_progress, expected, n_events),
            job_s,
        ),
        (
            "hand-written consumer (into the online store)",
            n_events / peer_s,
            sustained_rate(peer.progress, expected, n_events),
            peer_s,
        ),
    ]


def _peer(repo: str, bootstrap: str, seconds: float, results: Any) -> None:
    """The hand-written consumer on the benchmark component for ``seconds``, in a process of its own; puts its
    freshness, (seconds, (group, window end)) per window row written online, on ``results``."""
    from feast import FeatureStore

    peer = HandWrittenConsumer(short_slides.component, FeatureStore(repo_path=repo), bootstrap)
    peer.run(10**12, seconds)
    results.put([(age, (group, str(end))) for age, (group, end) in peer.freshness])


def _quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50, method="higher")), float(np.percentile(values, 99, method="higher"))


def freshness(rate: float, seconds: float) -> list[tuple[str, float, float, float, int, int]]:
    """Both paths side by side on one live stream at ``rate`` events/s stamped with the wall clock, on fraud with
    1 s slides (``support.short_slides``): (path, p50 s, p99 s, p99 s of the pusher's share, window closes, window
    rows) per path."""
    component = short_slides.component
    with tempfile.TemporaryDirectory() as state:
        services = _services(Path(state))
        try:
            folder = short_slides.register(Path(state) / "registry")
            streaming = EmbeddedStreaming(services, component, flush_every_s=1.0, python_path=(str(folder),))
            streaming.start(progress=lambda _line: None)
            streaming.feature_store()
            # The peer in a process of its own, as the Flink path's programs run: in this one it would take the GIL
            # from the producer, and both its windows and the pusher's would close late.
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            bootstrap = services.settings.kafka_bootstrap
            peer = context.Process(target=_peer, args=(str(streaming.repo), bootstrap, seconds + 10, results))
            peer.start()

            def live() -> Any:
                # Stamped as sent, as a live source stamps its events: a producer held up by the machine's other
                # work sends late, but its events are never older than they look.
                for event in component.generate(int(rate * seconds), int(time.time() * 1000), 5):
                    yield {**event, "event_time": int(time.time() * 1000)}

            produce(component, bootstrap, live(), rate=rate)
            peer_freshness: list[tuple[float, tuple[str, str]]] = results.get(timeout=seconds + 120)
            peer.join(30)
            streaming.stop()  # the pusher writes its final stats as it stops
            stats = streaming.pusher_stats()
            fresh = [age for age, _close in peer_freshness]
            rows = [
                (
                    "Flink job + Feast pusher",
                    stats.get("live_freshness_p50_s", float("nan")),
                    stats.get("live_freshness_p99_s", float("nan")),
                    stats.get("live_pusher_p99_s", float("nan")),
                    int(stats.get("live_closes", 0)),
                    int(stats.get("live_windows", 0)),
                ),
                (
                    "hand-written consumer",
                    *_quantiles(fresh),
                    float("nan"),
                    len({c for _s, c in peer_freshness}),
                    len(fresh),
                ),
            ]
        finally:
            services.down(progress=lambda _line: None)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_events", nargs="?", type=int, default=600_000, help="events in the throughput backlog")
    parser.add_argument("--part", choices=("all", "throughput", "freshness"), default="all")
    parser.add_argument("--seconds", type=float, default=70, help="live stream per rate in the freshness part")
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 5000], help="events/s of the live streams")
    args = parser.parse_args()
    if args.part in ("all", "throughput"):
        print_throughput(args.n_events)
    if args.part in ("all", "freshness"):
        print_freshness(args.rates, args.seconds)


def print_throughput(n_events: int) -> None:
    rows = throughput(n_events)
    table = Table(title=f"throughput: {n_events} events of backlog into the Feast online store", title_justify="left")
    for column in ("path", "events/s, whole backlog", "events/s, sustained", "seconds"):
        table.add_column(column)
    for name, rate, sustained, seconds in rows:
        table.add_row(name, f"{rate:,.0f}", f"{sustained:,.0f}", f"{seconds:.1f}")
    table.caption = (
        f"Flink path / hand-written: whole backlog {rows[0][1] / rows[2][1]:.2f}x, sustained "
        f"{rows[0][2] / rows[2][2]:.2f}x (goal: >= 20k events/s sustained, and > 1x). Sustained: from a quarter to "
        "nine tenths of the window rows, after start-up (the JVM's JIT warm-up)."
    )
    console.print(table)


def print_freshness(rates: list[float], seconds: float) -> None:
    fresh = Table(
        title=f"freshness: window close -> online store, {seconds:g} s live streams (wall-clock event times), "
        f"{short_slides.NAME} (fraud, 1 s slides)",
        title_justify="left",
    )
    columns = ("events/s", "path", "p50 s", "p99 s", "p99 / peer's", "p99 s from emission", "closes", "rows")
    for column in columns:
        fresh.add_column(column)
    for rate in rates:
        ours, peer = freshness(rate, seconds)
        for name, p50, p99, pusher, closes, count in (ours, peer):
            ratio = f"{ours[2] / peer[2]:.2f}x" if name == ours[0] else ""
            share = "" if pusher != pusher else f"{pusher:.2f}"  # NaN: the peer has no job before it
            fresh.add_row(f"{rate:,.0f}", name, f"{p50:.2f}", f"{p99:.2f}", ratio, share, str(closes), str(count))
    fresh.caption = (
        "Close = window end + watermark delay (live: event time is the wall clock); one row per window result "
        "written online; closes = distinct (group, window end). From emission: the pusher's share, from the job "
        "sending the closed window to Kafka to online. Goal: p99 under 1 s, over 50+ closes per rate."
    )
    console.print(fresh)


if __name__ == "__main__":
    main()
