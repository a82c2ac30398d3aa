"""Streaming features: Kafka -> Flink -> Feast against the hand-written alternative, measured in one run.

1. Throughput: a backlog of N events (plus watermark markers) drained into the Feast online store, by
   (a) the Flink job + Feast pusher, and (b) one Python consumer aggregating the same windows in memory and
   pushing closed windows to Feast, which is what a user would otherwise write by hand. Both must end with the
   same window results; the table reports events/s for each and their ratio, over the whole backlog (start-up
   included) and sustained (once start-up is behind: the rate a long-running job keeps).
2. Freshness on live streams at 1,000 and 5,000 events/s (events stamped with the wall clock): seconds from a
   window's close (its end plus the watermark delay, ``pipelines.streaming.freshness``) until its row is in the
   online store, p50 and p99 over every window row written online, for both paths in the same run (each alone,
   one after the other), with the number of window closes they rest on. On fraud with 1 s slides
   (``support.short_slides``): fraud's own one- and five-minute slides give a minute-long run one close, and a p99
   over one close is one batch's.

Prints tables; asserts nothing. `make bench` or `PYTHONPATH=. .venv/bin/python benchmarks/streaming_throughput.py
[N] [--part throughput|freshness] [--rates 1000 5000] [--seconds 70]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.support import short_slides
from benchmarks.support.handwritten_consumer import HandWrittenConsumer
from contract import Component
from contract.registry import load
from contract.streaming import topics
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from pipelines.streaming.producer import advance_watermark, produce
from tests.support.streaming_reference import offline_history, reference_windows

console = Console(width=140)


def _services(state: Path) -> EmbeddedServices:
    settings = EmbeddedSettings.on_free_ports(state)
    services = EmbeddedServices(settings, ["kafka", "redis"])
    services.up(progress=lambda _line: None)
    return services


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


FreshnessRow = tuple[str, float, float, float, int, int, float, float]
"""(path, p50 s, p99 s, p99 s of the pusher's share, window closes, window rows, events/s sent, load average as
the stream ended)."""


def _live(rate: float, seconds: float) -> Iterator[dict[str, Any]]:
    """The live stream at ``rate``: generated before the clock starts (the load generator's own work is not the
    paths'), each event stamped as it is sent, as a live source stamps its events: a producer held up by the
    machine's other work sends late, but its events are never older than they look."""
    ready = list(short_slides.component.generate(int(rate * seconds), int(time.time() * 1000), 5))

    def stamped() -> Iterator[dict[str, Any]]:
        for event in ready:
            event["event_time"] = int(time.time() * 1000)
            yield event

    return stamped()


def _send(component: Component, bootstrap: str, events: Iterator[dict[str, Any]], rate: float) -> tuple[float, float]:
    """Produce ``events`` paced at ``rate``: the rate reached (events/s) and the one-minute load average as the
    stream ended (the machine's queue for its two cores)."""
    began = time.monotonic()
    sent = produce(component, bootstrap, events, rate=rate)
    return sent / (time.monotonic() - began), os.getloadavg()[0]


def freshness(rate: float, seconds: float) -> list[FreshnessRow]:
    """Each path alone on a live stream at ``rate`` events/s stamped with the wall clock, one after the other, each
    on a service set of its own, on fraud with 1 s slides (``support.short_slides``). Alone: side by side, the two
    paths fight for the same two cores and each one's tail is the other's work; in production neither runs beside
    the other."""
    return [_flink_freshness(rate, seconds), _peer_freshness(rate, seconds)]


def _flink_freshness(rate: float, seconds: float) -> FreshnessRow:
    component = short_slides.component
    with tempfile.TemporaryDirectory() as state:
        services = _services(Path(state))
        try:
            folder = short_slides.register(Path(state) / "registry")
            streaming = EmbeddedStreaming(services, component, flush_every_s=1.0, python_path=(str(folder),))
            streaming.start(progress=lambda _line: None)
            if streaming.monitor is not None:
                # Not the feature path (its own Flink job, its own pods on a cluster): here it would join every
                # resolution's label, half the stream, with predictions that never come, on the same two cores.
                streaming.monitor.stop()
            events = _live(rate, seconds)
            sent, load = _send(component, services.settings.kafka_bootstrap, events, rate)
            time.sleep(10)  # windows closed by the last events reach the store (as the peer runs 10 s past its stream)
            streaming.stop()  # the pusher writes its final stats as it stops
            stats = streaming.pusher_stats()
        finally:
            services.down(progress=lambda _line: None)
    return (
        "Flink job + Feast pusher",
        stats.get("live_freshness_p50_s", float("nan")),
        stats.get("live_freshness_p99_s", float("nan")),
        stats.get("live_pusher_p99_s", float("nan")),
        int(stats.get("live_closes", 0)),
        int(stats.get("live_windows", 0)),
        sent,
        load,
    )


def _peer_freshness(rate: float, seconds: float) -> FreshnessRow:
    component = short_slides.component
    with tempfile.TemporaryDirectory() as state:
        services = _services(Path(state))
        try:
            streaming = EmbeddedStreaming(services, component)
            streaming.ensure_topics()
            streaming.feature_store()  # the same Feast repo, applied; no job, pusher or archive
            # In a process of its own, as the Flink path's programs run: in this one it would take the GIL from the
            # producer, and its windows would close late.
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            bootstrap = services.settings.kafka_bootstrap
            events = _live(rate, seconds)
            peer = context.Process(target=_peer, args=(str(streaming.repo), bootstrap, seconds + 10, results))
            peer.start()
            sent, load = _send(component, bootstrap, events, rate)
            found: list[tuple[float, tuple[str, str]]] = results.get(timeout=seconds + 120)
            peer.join(30)
        finally:
            services.down(progress=lambda _line: None)
    fresh = [age for age, _close in found]
    return (
        "hand-written consumer",
        *_quantiles(fresh),
        float("nan"),
        len({c for _s, c in found}),
        len(fresh),
        sent,
        load,
    )


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
    columns = ("events/s", "path", "p50 s", "p99 s", "p99 / peer's", "p99 s from emission", "closes", "rows", "sent/s")
    columns += ("load",)
    for column in columns:
        fresh.add_column(column)
    for rate in rates:
        ours, peer = freshness(rate, seconds)
        for name, p50, p99, pusher, closes, count, sent, load_avg in (ours, peer):
            ratio = f"{ours[2] / peer[2]:.2f}x" if name == ours[0] else ""
            share = "" if pusher != pusher else f"{pusher:.2f}"  # NaN: the peer has no job before it
            cells = (
                f"{p50:.2f}",
                f"{p99:.2f}",
                ratio,
                share,
                str(closes),
                str(count),
                f"{sent:,.0f}",
                f"{load_avg:.1f}",
            )
            fresh.add_row(f"{rate:,.0f}", name, *cells)
    fresh.caption = (
        "Close = window end + watermark delay (live: event time is the wall clock); one row per window result "
        "written online; closes = distinct (group, window end). From emission: the pusher's share, from the job "
        "sending the closed window to Kafka to online. Each path alone, one after the other, on a service set of its "
        "own; sent/s: the rate the stream reached; load: the one-minute load average as it ended (2 cores). "
        "Goal: p99 under 1 s, over 50+ closes per rate."
    )
    console.print(fresh)


if __name__ == "__main__":
    main()
