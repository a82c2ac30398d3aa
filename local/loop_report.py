"""The closed loop as a picture: each version's live metric over time (the monitor's, from its labelled
predictions, as the embedded Prometheus recorded it) with a band of two standard errors, its holdout score dashed,
and a mark for each transition: the world's change, the alert, the retraining run, the challenger's registration,
each canary step and the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from local.dashboard_report import Prometheus
from local.loop_drill import LoopEvent
from monitoring import metrics as m

MARK_COLOURS = {
    "change": "tab:purple",
    "alert": "tab:red",
    "retraining": "tab:orange",
    "finished": "tab:orange",
    "registered": "tab:blue",
    "canary": "tab:cyan",
    "holding": "tab:grey",
    "promoted": "tab:green",
    "rolled back": "black",
}


@dataclass(frozen=True)
class VersionSeries:
    """One version's live metric over time (epoch seconds), its standard error at the same times, its holdout."""

    version: str
    times: list[float]
    values: list[float]
    stderr: list[float]
    holdout: float | None


def live_series(prometheus: Prometheus, component: str, start: float, end: float, step_s: float) -> list[VersionSeries]:
    """Each version's live metric, its standard error and holdout score between ``start`` and ``end``."""
    selector = f'{{{m.COMPONENT}="{component}"}}'

    def by_version(name: str) -> dict[str, dict[float, float]]:
        found: dict[str, dict[float, float]] = {}
        for result in prometheus.query_range(f"{name}{selector}", start, end, step_s):
            points = found.setdefault(result["metric"].get(m.VERSION, "?"), {})
            points.update({float(t): float(v) for t, v in result["values"]})
        return found

    live, stderr = by_version(m.LIVE_METRIC.name), by_version(m.LIVE_METRIC_STDERR.name)
    holdout = {v: max(points.values()) for v, points in by_version(m.HOLDOUT_METRIC.name).items() if points}
    series = []
    for version, points in sorted(live.items(), key=lambda item: int(item[0]) if item[0].isdigit() else 0):
        times = sorted(points)
        errors = stderr.get(version, {})
        series.append(
            VersionSeries(
                version,
                times,
                [points[t] for t in times],
                [errors.get(t, 0.0) for t in times],
                holdout.get(version),
            )
        )
    return series


def plot_loop(
    component: str, metric: str, series: list[VersionSeries], events: list[LoopEvent], start: float, path: Path
) -> Path:
    """The picture, minutes since ``start`` on the x axis; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the picture goes to a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6))
    for index, line in enumerate(series):
        colour = f"C{index}"
        xs = [(t - start) / 60 for t in line.times]
        ax.plot(xs, line.values, color=colour, label=f"v{line.version} live {metric}")
        low = [v - 2 * e for v, e in zip(line.values, line.stderr, strict=True)]
        high = [v + 2 * e for v, e in zip(line.values, line.stderr, strict=True)]
        ax.fill_between(xs, low, high, color=colour, alpha=0.15)
        if line.holdout is not None:
            ax.axhline(line.holdout, color=colour, linestyle="--", linewidth=1, label=f"v{line.version} holdout")
    bottom, top = ax.get_ylim()
    for lane, event in enumerate(e for e in events if e.kind in MARK_COLOURS):
        x = (event.at - start) / 60
        colour = MARK_COLOURS[event.kind]
        ax.axvline(x, color=colour, alpha=0.6, linewidth=1)
        label = event.kind if event.kind != "canary" else f"{event.detail.get('share', '')}% {event.detail['verdict']}"
        ax.text(x, top - (lane % 6) * (top - bottom) / 14, f" {label}", color=colour, fontsize=8, va="top")
    ax.set_xlabel("minutes since the champion started serving")
    ax.set_ylabel(f"live {metric} (band: two standard errors)")
    ax.set_title(f"{component}: the closed loop, from the world's change to the promoted model", fontsize=11)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
