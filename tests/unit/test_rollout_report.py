"""The rollout report: the canary's share over time follows the analysed windows, and the picture is drawn from
a traffic log and a rollout's final state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes

from local.rollout_report import _share_steps, plot_rollout
from local.traffic import Response, TrafficLog
from serving.rollout.analysis import Analysis, Shift, Snapshot

START = 1_000.0


def _canary(outcome: str) -> dict[str, object]:
    history = [
        {"at": START + 5, "share": 20, "verdict": "inconclusive"},
        {"at": START + 10, "share": 20, "verdict": "pass"},
        {"at": START + 15, "share": 50, "verdict": "pass" if outcome == "promoted" else "fail"},
    ]
    if outcome == "promoted":
        history.append({"at": START + 20, "share": 100, "verdict": "pass"})
    return {
        "started_at": START,
        "ended_at": history[-1]["at"],
        "stable_version": "1",
        "canary_version": "2",
        "outcome": outcome,
        "history": history,
        "slots": {"a": "1", "b": "2"},
    }


def test_share_steps_follow_passes_and_end_at_the_outcome() -> None:
    times, shares = _share_steps(_canary("promoted"), START)
    assert shares == [20, 50, 100, 100, 100]
    assert times[:4] == [0.0, 10.0, 15.0, 20.0]
    _, shares = _share_steps(_canary("rolled back"), START)
    assert shares == [20, 50, 0, 0]


def test_a_paused_canary_keeps_its_share() -> None:
    """A stable-unhealthy window pauses the rollout with traffic unchanged: no outcome, the share stays."""
    canary = _canary("rolled back")
    canary["history"][-1]["verdict"] = "stable unhealthy"
    canary.update(outcome=None, share=50, paused="stable error rate 40%")
    del canary["ended_at"]
    _, shares = _share_steps(canary, START)
    assert shares == [20, 50, 50, 50]


def test_the_report_is_drawn(tmp_path: Path) -> None:
    log = TrafficLog()
    for i in range(400):
        log.add(Response(START + i * 0.05, 200 if i % 50 else 503, "ab"[i % 5 == 0], 0.005 + (i % 7) / 1000))
    snapshot = Snapshot(requests=100, predictions={0.1: 40.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0})
    analyses = [(START + 20, Analysis("pass", [], snapshot, snapshot, Shift("score chi-square", 1.0, 0.0, psi=0.0)))]
    path = plot_rollout("fraud", log, _canary("promoted"), analyses, tmp_path / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_every_predicted_class_is_drawn_for_both_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stable = Snapshot(requests=100, classes={"on_time": 70.0, "late": 30.0, "very_late": 0.0})
    canary = Snapshot(requests=100, classes={"on_time": 64.0, "late": 30.0, "very_late": 6.0})
    shift = Shift("chi-square", 0.04, 0.17)
    drawn: dict[str, list[float]] = {}
    original = Axes.bar

    def bar(self: Axes, x: Any, height: Any, *args: Any, label: str = "", **kwargs: Any) -> Any:
        drawn[label] = list(height)
        return original(self, x, height, *args, label=label, **kwargs)

    monkeypatch.setattr(Axes, "bar", bar)
    analyses = [(START + 20, Analysis("pass", [], stable, canary, shift))]
    log = TrafficLog()
    for i in range(40):
        log.add(Response(START + i * 0.5, 200, "ab"[i % 2], 0.005))
    plot_rollout("delivery", log, _canary("promoted"), analyses, tmp_path / "report.png")
    assert drawn == {"v1 (stable)": [0.7, 0.3, 0.0], "v2 (canary)": [0.64, 0.3, 0.06]}
