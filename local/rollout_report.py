"""A canary rollout as a picture: traffic per version and the canary's share over time, latency per version,
and the predictions the analysis compared (the score histogram's buckets, or every predicted class of a
multiclass model), with each analysed window's verdict marked."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from local.traffic import TrafficLog
from serving.rollout.analysis import Analysis, Snapshot

VERDICT_COLOURS = {"pass": "tab:green", "fail": "tab:red", "inconclusive": "tab:grey", "stable unhealthy": "tab:orange"}


def _per_second(log: TrafficLog, slots: dict[str, str], start: float) -> dict[str, dict[int, list[float]]]:
    """Version -> second since start -> latencies of the successful responses; errors under ``<v> errors``."""
    series: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for response in log.responses:
        version = f"v{slots.get(response.slot, response.slot)}"
        key = version if response.status == 200 else f"{version} errors"
        if response.at >= start:
            series[key][int(response.at - start)].append(response.latency_s)
    return series


def _share_steps(canary: dict[str, Any], start: float) -> tuple[list[float], list[int]]:
    """The canary's share over time: each window is judged at the share it ran at, and a pass moves it to the
    share the next window records. After the last window the outcome sets it (100 promoted, 0 rolled back or
    aborted); a rollout without one (paused on an unhealthy stable version, or still running) keeps the share its
    state holds: a pause leaves traffic where it was."""
    history = canary["history"]
    if not history:
        return [0.0], [0]
    times, shares = [0.0], [int(history[0]["share"])]
    for entry, following in zip(history, [*history[1:], None], strict=True):
        if entry["verdict"] == "inconclusive":
            continue
        if following:
            after = following["share"]
        elif canary.get("outcome"):
            after = 100 if canary["outcome"] == "promoted" else 0
        else:
            after = canary.get("share", entry["share"])
        times.append(entry["at"] - start)
        shares.append(int(after))
    end = float(canary.get("ended_at", history[-1]["at"]))
    times.append(end - start + 2)
    shares.append(shares[-1])
    return times, shares


def _bucket_shares(snapshot: Snapshot) -> tuple[list[str], list[float]]:
    """Bucket labels and the share of predictions in each (from the cumulative histogram), the ``+Inf`` bucket
    included: predictions above the last bound are predictions too."""
    bounds = sorted(snapshot.predictions)
    total = snapshot.predictions.get(float("inf"), max(snapshot.predictions.values(), default=0.0))
    labels, shares, below, previous = [], [], 0.0, 0.0
    for bound in bounds:
        cumulative = snapshot.predictions[bound]
        labels.append(f">{previous:g}" if bound == float("inf") else f"≤{bound:g}")
        shares.append((cumulative - below) / total if total else 0.0)
        below, previous = cumulative, bound
    return labels, shares


def _class_shares(snapshot: Snapshot, names: list[str]) -> list[float]:
    """The share of predictions of each class in ``names`` (0 for a class this version never predicted)."""
    total = sum(snapshot.classes.values())
    return [snapshot.classes.get(name, 0.0) / total if total else 0.0 for name in names]


def plot_rollout(
    component: str,
    log: TrafficLog,
    canary: dict[str, Any],
    analyses: list[tuple[float, Analysis]],
    path: Path,
) -> Path:
    """Draw the rollout into ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the picture goes to a file
    import matplotlib.pyplot as plt

    start = float(canary["started_at"])
    slots: dict[str, str] = canary["slots"]
    series = _per_second(log, slots, start)
    fig, (traffic_ax, latency_ax, predictions_ax) = plt.subplots(3, 1, figsize=(10, 11))
    fig.suptitle(
        f"{component}: canary of v{canary['canary_version']} against v{canary['stable_version']} "
        f"-> {canary.get('outcome')}",
        fontsize=13,
    )

    for version, seconds in sorted(series.items()):
        xs = sorted(seconds)
        traffic_ax.plot(xs, [len(seconds[x]) for x in xs], label=f"{version} requests/s", drawstyle="steps-mid")
    share_ax = traffic_ax.twinx()
    times, shares = _share_steps(canary, start)
    share_ax.step(times, shares, where="post", color="black", linestyle="--", label="canary share")
    share_ax.set_ylabel("canary share (%), dashed")
    share_ax.set_ylim(0, 105)
    for entry in canary["history"]:
        share_ax.axvline(entry["at"] - start, color=VERDICT_COLOURS.get(entry["verdict"], "grey"), alpha=0.4)
    traffic_ax.set_ylabel("responses per second")
    traffic_ax.set_xlabel("seconds since the canary started (vertical lines: analysed windows, green pass)")
    traffic_ax.legend(loc="upper left")

    for version, seconds in sorted(series.items()):
        if version.endswith("errors"):
            continue
        xs = [x for x in sorted(seconds) if len(seconds[x]) >= 2]
        p99 = [sorted(seconds[x])[int(0.99 * (len(seconds[x]) - 1))] * 1000 for x in xs]
        latency_ax.plot(xs, p99, marker=".", linestyle="", label=f"{version} p99 per second")
    latency_ax.set_ylabel("client-side latency (ms)")
    latency_ax.set_yscale("log")
    latency_ax.set_xlabel("seconds since the canary started")
    latency_ax.legend(loc="upper left")

    judged = [a for _, a in analyses if a.stable.requests and a.canary.requests]
    if judged:
        last = judged[-1]
        # Every class either version predicted, in the order the counters list them (the model's order).
        names = list(dict.fromkeys([*last.stable.classes, *last.canary.classes]))
        for label, snapshot, offset in (
            (f"v{canary['stable_version']} (stable)", last.stable, -0.2),
            (f"v{canary['canary_version']} (canary)", last.canary, 0.2),
        ):
            if names:
                ticks, fractions = names, _class_shares(snapshot, names)
            else:
                ticks, fractions = _bucket_shares(snapshot)
            predictions_ax.bar([i + offset for i in range(len(ticks))], fractions, width=0.4, label=label)
            predictions_ax.set_xticks(range(len(ticks)), ticks, rotation=0 if names else 45, fontsize=8)
        what = "predicted classes" if names else "predictions"
        predictions_ax.set_title(f"{what} in the last judged window ({last.shift})", fontsize=10)
    predictions_ax.set_ylabel("share of predictions")
    predictions_ax.legend(loc="upper right")
    if canary.get("reason"):
        fig.text(0.01, 0.005, f"reason: {canary['reason']}", fontsize=8, wrap=True)

    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
