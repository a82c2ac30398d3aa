"""The loop's figures from its transitions: the order a closed loop must show, minutes from the change to each,
and the live metric before and after; alerts a new model cannot fix are no part of the order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cli.demo_loop import loop_figures, loop_lines
from local.loop_drill import ORDER, LoopEvent, transitions_in_order
from local.loop_report import VersionSeries

CHANGE = 1_800_000_000.0


class Watched:
    """What ``loop_figures`` reads of a ``LoopWatch``: its events and the first of each kind."""

    def __init__(self, events: list[LoopEvent]) -> None:
        self.events = events

    def first(self, kind: str) -> LoopEvent | None:
        return next((e for e in self.events if e.kind == kind), None)


def _events() -> list[LoopEvent]:
    def at(minutes: float, kind: str, text: str = "", **detail: Any) -> LoopEvent:
        return LoopEvent(CHANGE + minutes * 60, kind, text or kind, detail)

    return [
        at(0, "change"),
        at(1.5, "alert", "alert FeatureFreshnessSlow (freshness): slow (noted: not one a new model fixes)",
           reason="freshness"),
        at(3, "alert", "alert LiveMetricBelowHoldout (performance): worse", reason="performance"),
        at(3.1, "retraining"),
        at(9, "registered", v="2"),
        at(9.5, "canary", share=50, verdict="pass"),
        at(14, "promoted", v="2"),
    ]  # fmt: skip


def test_a_closed_loop_shows_every_transition_in_order_with_its_minutes() -> None:
    events = _events()
    assert transitions_in_order(events) == list(ORDER)
    champion = VersionSeries("1", [CHANGE - 60, CHANGE + 300], [0.95, 0.74], [0.01, 0.02], 0.95)
    promoted = VersionSeries("2", [CHANGE + 900, CHANGE + 1000], [0.90, 0.93], [0.02, 0.02], 0.94)
    figures = loop_figures(Watched(events), CHANGE, [champion, promoted], "1")
    assert figures["order"] == list(ORDER)
    assert (figures["alerts"], figures["retrainable_alerts"], figures["runs"]) == (2, 1, 1)
    assert figures["minutes_from_change"]["alert"] == 1.5, "the first alert of any kind"
    assert figures["minutes_from_change"]["promoted"] == 14
    assert (figures["champion_before"], figures["champion_after_worst"], figures["promoted_at_end"]) == (
        0.95,
        0.74,
        0.93,
    )
    lines = loop_lines(figures, "roc_auc")
    assert lines[0] == "transitions in order: change -> alert -> retraining -> registered -> canary -> promoted"
    assert "live roc_auc: champion 0.950 before the change, 0.740 at its worst after" in lines[-1]


def test_a_loop_out_of_order_or_without_a_change_says_so(tmp_path: Path) -> None:
    events = _events()
    swapped = [events[0], events[3], events[2], *events[4:]]
    swapped[1] = LoopEvent(CHANGE + 10, "retraining", "manual run before any alert")
    assert transitions_in_order(swapped) == ["change", "retraining", "alert", "registered", "canary", "promoted"]
    quiet = loop_figures(Watched([]), None, [], "1")
    assert quiet["order"] == [] and "minutes_from_change" not in quiet and math.isnan(quiet.get("x", math.nan))
    assert loop_lines(quiet, "roc_auc")[:2] == [
        "transitions in order: none",
        "alerts 0 (0 a new model fixes), retraining runs 0",
    ]
