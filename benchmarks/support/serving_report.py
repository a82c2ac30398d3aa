"""The serving benchmark's tables: the in-process floor per step, the open-loop rates and the closed-loop
throughput per server, with the ratios the goal is judged by. See ``benchmarks/serving_latency.py``."""

from __future__ import annotations

import statistics
import urllib.request
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.support.load_generator import Load, fmt, quantiles
from benchmarks.support.serving_floor import paced_step
from serving import metrics


def _cells(load: Load, count: str) -> list[str]:
    """A measurement's row in both load tables: level, server, ``count``, p50, p99, server and client CPU."""
    p50, p99 = load.quantiles()
    return [f"{load.level:g}", load.label, count, fmt(p50), fmt(p99), fmt(load.server_cpu_ms), f"{load.client_cpu:.0%}"]


def report(
    console: Console,
    steps: dict[str, list[float]],
    loads: list[Load],
    closed: list[Load],
    seconds: float,
    paced_rate: float,
    goal: str,
) -> None:
    """Prints the three tables; ``paced_rate`` is the rate the floor's paced call was spaced at."""
    table = Table(
        title="floor: one single-row request in this process (ComponentModel, same model and store, 1 model thread)",
        title_justify="left",
    )
    for column in ("step", "p50 ms", "p99 ms"):
        table.add_column(column)
    for name, samples in steps.items():
        p50, p99 = quantiles(samples)
        table.add_row(name, fmt(p50), fmt(p99))
    console.print(table)
    floor_p50 = quantiles(steps["lookup+predict"])[0]
    paced_p50 = quantiles(steps[paced_step(paced_rate)])[0]

    table = Table(
        title=f"open loop: fixed rates, {seconds:g}s each, latency from when each request went out",
        title_justify="left",
    )
    for column in ("rate/s", "server", "ok", "p50 ms", "p99 ms", "server CPU ms/req", "client CPU", "send lag p99 ms"):
        table.add_column(column)
    for load in loads:
        table.add_row(*_cells(load, f"{load.ok}/{load.sent}"), fmt(load.send_lag_p99_ms))
    ours = [load for load in loads if load.label == "ours"]
    proxied = [load for load in loads if load.label == "ours via HAProxy"]
    # Only rates where both answered in time: a timed-out p50 says nothing about the hop.
    hops = [b.quantiles()[0] - a.quantiles()[0] for a, b in zip(ours, proxied, strict=True)]
    hop = statistics.median(finite) if (finite := [h for h in hops if np.isfinite(h)]) else float("nan")
    table.caption = (
        f"p50 at {ours[0].level:g}/s = {fmt(ours[0].quantiles()[0] / floor_p50, 1)}x the in-process lookup+predict "
        f"({floor_p50:.2f} ms) in a tight loop, {fmt(ours[0].quantiles()[0] / paced_p50, 1)}x the in-process "
        f"runtime call at the same pace ({paced_p50:.2f} ms); the HAProxy hop adds {fmt(hop)} ms at p50 (median "
        "over the rates). "
        "mlflow gets the prepared feature rows (no Feast lookup).\n" + goal
    )
    console.print(table)

    table = Table(title=f"closed loop: max throughput, {seconds:g}s each", title_justify="left")
    for column in ("connections", "server", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "client CPU"):
        table.add_column(column)
    for load in closed:
        table.add_row(*_cells(load, f"{load.rate:.0f}"))
    pairs = [(a, b) for a in closed if a.label == "ours" for b in closed if b.label != "ours" and b.level == a.level]
    table.caption = (
        ", ".join(
            f"{a.level:g} connection(s): ours / {b.label} = {a.rate / b.rate:.1f}x"
            for a, b in pairs
            if b.label == "mlflow models serve"
        )
        + ". The load generator shares the 2 cores with the servers.\n"
        + goal
    )
    console.print(table)


def logged_rows(metrics_url: str) -> tuple[float, float]:
    """The inference log's written and dropped records, from the server's own metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    totals = {metrics.LOG_WRITTEN_TOTAL: 0.0, metrics.LOG_DROPPED_TOTAL: 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals[metrics.LOG_WRITTEN_TOTAL], totals[metrics.LOG_DROPPED_TOTAL]


LABELS = ("ours", "ours, no log")


def log_cost(console: Console, repeats: list[Load], seconds: float, written: float, dropped: float, goal: str) -> None:
    """p99 at 200/s and peak throughput with and without the inference log: each repeat, their medians, ratios."""
    table = Table(
        title=f"inference log's cost: the same server with and without it, interleaved pairs of {seconds:g}s",
        title_justify="left",
    )
    for column in ("measure", "with log", "without", "ratio", "each repeat (with / without)"):
        table.add_column(column)

    def row(name: str, level: float, value: Callable[[Load], float]) -> None:
        """``level`` tells the measurements apart: 200 (requests/s, open loop) or 4 (connections, closed)."""
        of = {label: [value(r) for r in repeats if r.level == level and r.label == label] for label in LABELS}
        with_log, without = statistics.median(of["ours"]), statistics.median(of["ours, no log"])
        each = ", ".join(f"{fmt(a)} / {fmt(b)}" for a, b in zip(of["ours"], of["ours, no log"], strict=True))
        table.add_row(name, fmt(with_log), fmt(without), fmt(with_log / without, 3), each)

    row("p99 ms at 200/s (median)", 200, lambda load: load.quantiles()[1])
    row("peak req/s at 4 connections (median)", 4, lambda load: load.rate)
    # The server's CPU time per request hardly depends on what else the machine runs, unlike its latency.
    row("server CPU ms/req at 200/s (median)", 200, lambda load: load.server_cpu_ms)
    row("server CPU ms/req at 4 connections (median)", 4, lambda load: load.server_cpu_ms)
    table.caption = f"inference log: {written:.0f} records written, {dropped:.0f} dropped over the whole run.\n{goal}"
    console.print(table)
