"""The rollout report: the canary's share over time follows the analysed windows, and the picture is drawn from
a traffic log and a rollout's final state."""

from __future__ import annotations

from pathlib import Path

from local.rollout_report import _share_steps, plot_rollout
from local.traffic import Response, TrafficLog
from serving.rollout.analysis import Analysis, Snapshot

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


def test_the_report_is_drawn(tmp_path: Path) -> None:
    log = TrafficLog()
    for i in range(400):
        log.add(Response(START + i * 0.05, 200 if i % 50 else 503, "ab"[i % 5 == 0], 0.005 + (i % 7) / 1000))
    snapshot = Snapshot(requests=100, predictions={0.1: 40.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0})
    analyses = [(START + 20, Analysis("pass", [], snapshot, snapshot, 0.0))]
    path = plot_rollout("fraud", log, _canary("promoted"), analyses, tmp_path / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
