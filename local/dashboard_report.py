"""Embedded mode's dashboards: the panels of ``monitoring.dashboards`` (the cluster's Grafana dashboards) evaluated
against the embedded Prometheus's HTTP API with the same PromQL, drawn to a PNG (``plot_report``) or read as a table
of current values (``current_values``). Grafana itself is not packaged for Debian, so embedded mode has none."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

import serving.metrics
from local.errors import EmbeddedError
from monitoring.dashboards import Dashboard, Panel, dashboards

DURATION = re.compile(r"(\d+)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
POINTS = 240
UNIT_LABELS = {"ops": "per second", "reqps": "requests/s", "s": "seconds", "percentunit": "share", "short": "count"}
"""The y-axis label of a panel's Grafana unit (``none``: no label)."""
"""Points per series in the report: one step is ``since / POINTS``."""


def duration_s(text: str) -> float:
    """``30m``, ``2h``, ``90s`` or ``1d`` in seconds."""
    found = DURATION.fullmatch(text.strip())
    if not found:
        raise EmbeddedError(f"duration {text!r}: expected a number and a unit s, m, h or d (e.g. 30m)")
    seconds = int(found.group(1)) * SECONDS[found.group(2)]
    if seconds <= 0:
        raise EmbeddedError(f"duration {text!r}: must be positive")
    return float(seconds)


class Prometheus:
    """The few calls of Prometheus' HTTP API the report makes; every failure is an ``EmbeddedError`` saying why."""

    def __init__(self, url: str, timeout_s: float = 30) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except requests.ConnectionError:
            raise EmbeddedError(
                f"Prometheus is not running at {self.url}: start the embedded services with `mlstack services up`"
            ) from None
        except requests.Timeout:
            raise EmbeddedError(f"Prometheus at {self.url} did not answer within {self.timeout_s:g}s") from None
        try:
            body = response.json()
        except ValueError:
            raise EmbeddedError(f"{self.url}{path} answered {response.status_code}, not Prometheus' JSON") from None
        if body.get("status") != "success":
            raise EmbeddedError(f"Prometheus refused {params.get('query')!r}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant vector results (``metric`` labels, ``value`` = [time, "number"])."""
        data = self._get("/api/v1/query", {"query": promql})
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def query_range(self, promql: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        """Range results (``metric`` labels, ``values`` = [[time, "number"], ...])."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
        result: list[dict[str, Any]] = self._get("/api/v1/query_range", params)["result"]
        return result


@dataclass(frozen=True)
class Line:
    """One series of a panel: its legend and its points (Unix seconds, value)."""

    label: str
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Evaluated:
    dashboard: Dashboard
    panel: Panel
    lines: list[Line]


def rate_window(scrape_interval: str, step_s: float) -> str:
    """What Grafana's ``$__rate_interval`` would be: at least four scrapes, at least one step."""
    seconds = max(4 * duration_s(scrape_interval), step_s)
    return f"{math.ceil(seconds)}s"


def selected(keys: list[str] | None) -> tuple[Dashboard, ...]:
    every = dashboards(serving.metrics)
    if not keys:
        return every
    known = {d.key: d for d in every}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise EmbeddedError(f"unknown dashboard {unknown[0]!r}; known: {', '.join(known)}")
    return tuple(known[k] for k in keys)


def evaluate_range(
    prometheus: Prometheus,
    component: str,
    since_s: float,
    scrape_interval: str,
    keys: list[str] | None = None,
    end: float | None = None,
) -> list[Evaluated]:
    """Every panel's queries over the last ``since_s`` seconds."""
    end = time.time() if end is None else end
    step = max(since_s / POINTS, 1.0)
    window = rate_window(scrape_interval, step)
    found = []
    for dashboard in selected(keys):
        for panel in dashboard.panels:
            lines = []
            for query in panel.queries:
                for series in prometheus.query_range(query.promql(component, window), end - since_s, end, step):
                    points = [(float(t), float(v)) for t, v in series["values"]]
                    lines.append(Line(query.series_label(series["metric"]), points))
            found.append(Evaluated(dashboard, panel, lines))
    return found


def current_values(
    prometheus: Prometheus, component: str, scrape_interval: str, keys: list[str] | None = None, window: str = ""
) -> list[Evaluated]:
    """Every panel's queries now (one point per series); rates over ``window`` (default: four scrapes)."""
    rate = window or rate_window(scrape_interval, 0)
    found = []
    for dashboard in selected(keys):
        for panel in dashboard.panels:
            lines = [
                Line(query.series_label(series["metric"]), [(float(series["value"][0]), float(series["value"][1]))])
                for query in panel.queries
                for series in prometheus.query(query.promql(component, rate))
            ]
            found.append(Evaluated(dashboard, panel, lines))
    return found


def formatted(value: float, unit: str) -> str:
    """A value as the panel's unit reads it."""
    if math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value:.2%}"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit in ("reqps", "ops"):
        return f"{value:.2f}/s"
    if unit == "short":
        return f"{value:,.0f}"
    return f"{value:.4g}"


def plot_report(component: str, evaluated: list[Evaluated], since: str, path: Path) -> Path:
    """Draw every panel into ``path`` (PNG), two per row, grouped by dashboard; an empty panel says so."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the picture goes to a file
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    columns = 2
    rows = max(1, math.ceil(len(evaluated) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(14, 3.2 * rows), squeeze=False)
    fig.suptitle(f"{component}: monitoring over the last {since}", fontsize=13)
    now = time.time()
    for ax, item in zip(axes.flat, evaluated, strict=False):
        ax.set_title(f"{item.dashboard.key}: {item.panel.title}", fontsize=10)
        ax.set_xlabel("seconds before now", fontsize=8)
        ax.tick_params(labelsize=8)
        drawn = False
        for line in item.lines:
            points = [(t - now, v) for t, v in line.points if not math.isnan(v) and not math.isinf(v)]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, label=line.label, drawstyle="steps-post" if len(xs) > 1 else "default", marker=".")
                drawn = True
        if drawn:
            ax.set_ylabel(UNIT_LABELS.get(item.panel.unit, ""), fontsize=8)
            if item.panel.unit == "percentunit":
                ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(evaluated) :]:
        ax.set_visible(False)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
