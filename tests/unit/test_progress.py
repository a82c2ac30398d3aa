"""Progress of long phases: plain lines (throttled, never repeated, a summary with the rate), rich bars on a
terminal, and the demo's trackers fed with what the phases really print (Ray Tune's own reporter for trials)."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from cli import demo_progress
from cli.demo_progress import CanaryProgress, TrialProgress, wait_caught_up
from contract.model import Metric
from devtools.go_build import Go, ToolchainError
from local.errors import EmbeddedError
from local.progress import BarPhase, LinePhase, for_stream, line_phases
from local.streaming import StreamingStatus
from serving.rollout.analysis import Analysis, Snapshot, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_throttled_never_repeated_and_end_with_a_summary_with_the_rate() -> None:
    clock, lines = Clock(), []
    phase = LinePhase("into Feast", lines.append, interval_s=10, clock=clock)
    phase.start(1000, "events")
    assert lines == ["into Feast: 0/1000 events (0%), 0s so far"]
    for second in range(1, 36):  # a status polled every second, its count moving every 3 s
        clock.now += 1
        phase.update(second // 3 * 30, "waiting" if second < 30 else "")
    # One line per 10 s at most, each with what changed since the last one.
    assert lines[1:] == [
        "into Feast: 90/1000 events (9%), 9.0 events/s, about 1m41s left; waiting",
        "into Feast: 180/1000 events (18%), 9.0 events/s, about 1m31s left; waiting",
        "into Feast: 300/1000 events (30%), 10 events/s, about 1m10s left",
    ]
    clock.now += 60
    phase.update(330, "")  # what changed since the last line
    for _ in range(6):  # then nothing moves for a minute: the same state is not shown again
        clock.now += 10
        phase.update(330, "")
    assert lines[-1].startswith("into Feast: 330/1000 events") and len(lines) == 5
    assert len(lines) == len(set(lines)), lines
    clock.now += 2
    phase.update(1000)
    phase.done("0 dead letters")
    assert lines[-2:] == [
        "into Feast: 1000/1000 events (100%), 6.4 events/s",
        "into Feast: 1000/1000 events in 2m37s (6.4 events/s); 0 dead letters",
    ]
    phase.done()
    assert len(lines) == 7, "a phase ends once"


def test_plain_lines_without_a_total_count_with_the_time_so_far_and_slow_rates_read_per_unit() -> None:
    clock, lines = Clock(), []
    with LinePhase("go build", lines.append, clock=clock) as phase:
        phase.start(None, "packages")
        clock.now += 12
        phase.advance(30, "4 modules downloaded")
    assert lines == [
        "go build: 0 packages, 0s so far",
        "go build: 30 packages, 2.5 packages/s, 12s so far; 4 modules downloaded",
        "go build: 30 packages in 12s (2.5 packages/s)",
    ]
    slow = LinePhase("search", lines.append, clock=clock)
    slow.start(4, "trials")
    clock.now += 30
    slow.advance(2)
    assert lines[-1] == "search: 2/4 trials (50%), 15s per trial, about 30s left"


def test_a_phase_left_by_an_error_says_where_it_stopped_and_one_never_started_says_nothing() -> None:
    clock, lines = Clock(), []
    with pytest.raises(RuntimeError), LinePhase("go build", lines.append, clock=clock) as phase:
        phase.start(None, "packages")
        clock.now += 3
        phase.advance(7)
        raise RuntimeError("exit 1")
    assert lines[-1] == "go build: stopped at 7 packages after 3s"
    with LinePhase("search", lines.append, clock=clock) as idle:
        idle.update(3, "before start")
    assert len(lines) == 2


def test_a_terminal_gets_a_bar_with_counts_and_rate_replaced_by_the_summary() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    clock = Clock()
    with BarPhase("into Feast", console, clock=clock) as phase:
        phase.start(200, "events")
        clock.now += 4
        phase.update(80, "12 feature rows not yet in Feast")
        assert phase._bar is not None
        phase._bar.refresh()
        console.print("a line printed meanwhile")
    text = out.getvalue()
    assert "80/200" in text and "20 events/s" in text and "12 feature rows not yet in Feast" in text
    assert "a line printed meanwhile" in text
    assert text.rstrip().endswith("into Feast: 80/200 events in 4s (20 events/s)")


def test_for_stream_draws_bars_only_on_a_terminal() -> None:
    out = io.StringIO()
    emit, phases = for_stream(out)
    assert isinstance(phases("x"), LinePhase)
    emit("[champion] kept as written")
    assert out.getvalue() == "[champion] kept as written\n"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    _, phases = for_stream(Tty())
    assert isinstance(phases("x"), BarPhase)


TRIALS = ((0.8812, None), (0.9123, None), (0.95, "/tmp/error.txt"))
"""Scores and error files of three trials: the last errored (its score is no result)."""


def _ray_tune_output(trials: tuple[tuple[float, str | None], ...] = TRIALS) -> list[str]:
    """What the search step prints for ``trials``, rendered by Ray Tune's own terminal reporter."""
    from ray.air.constants import TRAINING_ITERATION
    from ray.tune.experimental.output import AirVerbosity, TuneTerminalReporter

    class Trial(SimpleNamespace):
        def __str__(self) -> str:
            return str(self.name)

    reporter = TuneTerminalReporter(AirVerbosity.DEFAULT, metric="score", mode="max")
    reporter.setup(start_time=0, total_samples=len(trials))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print(f"Ray Tune: {len(trials)} trials, 2 at a time, ASHA over 4 stages")
        for index, (score, error) in enumerate(trials):
            result = {"score": score, "stage": 4, TRAINING_ITERATION: 4, "config": {}}
            trial = Trial(name=f"_trial_8a1c2_0000{index}", trial_id=str(index), last_result=result, error_file=error)
            (reporter.on_trial_error if error else reporter.on_trial_complete)(0, [trial], trial)
    return out.getvalue().splitlines()


def test_trials_are_counted_from_ray_tunes_output_with_the_best_score_and_their_lines_are_not_repeated() -> None:
    clock, lines, shown = Clock(), [], []
    phase = LinePhase("search", lines.append, interval_s=0, clock=clock)
    search = TrialProgress(phase, Metric("auc", "max", lambda y, p: 0.0), shown.append)
    for line in _ray_tune_output():
        if demo_progress.TRIAL_LINE.match(line):
            clock.now += 10  # a trial ends every 10 s
        search.output(line)
        if demo_progress.TRIAL_LINE.match(line) or line.startswith("Ray Tune:"):  # what the runner passes on
            search.shown(line)
    assert shown == ["Ray Tune: 3 trials, 2 at a time, ASHA over 4 stages"]
    assert "search: 1/3 trials (33%), 10s per trial, about 20s left; best validation auc 0.8812" in lines
    assert "search: 2/3 trials (66%), 10s per trial, about 10s left; best validation auc 0.9123" in lines
    # The errored trial's score is not a result: the best stays the completed trials' best.
    assert lines[-1] == "search: 3/3 trials in 30s (10s per trial); best validation auc 0.9123, 1 errored"


def test_the_last_trials_score_counts_though_it_ends_with_the_search() -> None:
    """Trials often end together: the last one's score comes after the count is complete (a real run missed it)."""
    lines: list[str] = []
    search = TrialProgress(LinePhase("search", lines.append, 0), Metric("auc", "max", lambda y, p: 0.0), print)
    for line in _ray_tune_output(((0.9735, None), (0.9905, None))):
        search.output(line)
    assert lines[-1].startswith("search: 2/2 trials in ") and lines[-1].endswith("; best validation auc 0.9905")
    assert not any("(100%)" in line for line in lines), "the summary, not one more status line, says it ended"


def test_for_a_metric_to_minimise_the_lowest_score_is_the_best() -> None:
    lines: list[str] = []
    search = TrialProgress(LinePhase("search", lines.append, 0), Metric("rmse", "min", lambda y, p: 0.0), print)
    for line in _ray_tune_output():
        search.output(line)
    assert search.best == 0.8812


def _analysis(verdict: Verdict, reasons: list[str]) -> Analysis:
    empty = Snapshot(requests=0, server_errors=0, latency={}, predictions={})
    return Analysis(verdict, reasons, empty, empty, 0.0)


def test_canary_steps_count_passed_windows_and_only_decisive_lines_are_printed() -> None:
    clock, lines, shown = Clock(), [], []
    state: dict[str, Any] = {"history": [], "outcome": None}
    rollout = SimpleNamespace(state=lambda: state)
    phase = LinePhase("canary steps", lines.append, interval_s=0, clock=clock)
    phase.start(2, "steps")
    canary = CanaryProgress(phase, rollout, shown.append)
    windows: list[tuple[int, Verdict, list[str], str]] = [
        (50, "inconclusive", ["not enough traffic yet (canary 12 requests)"], "waiting"),
        (50, "pass", [], "stepped to 100%"),
        (100, "pass", [], "promoted"),
    ]
    for share, verdict, reasons, action in windows:
        clock.now += 5
        state["history"].append({"share": share, "verdict": verdict})
        state["outcome"] = "promoted" if action == "promoted" else None
        canary.line(f"canary at {share}%: {verdict}: {'; '.join(reasons)} -> {action}")
        canary.window(_analysis(verdict, reasons))
    assert shown == ["canary at 50%: pass:  -> stepped to 100%", "canary at 100%: pass:  -> promoted"]
    assert lines[1] == (
        "canary steps: 0/2 steps (0%), 5s so far; window 1 at 50%: inconclusive (not enough traffic yet "
        "(canary 12 requests))"
    )
    assert lines[2:] == [
        "canary steps: 1/2 steps (50%), 10s per step, about 10s left; window 2 at 50%: pass",
        "canary steps: 2/2 steps in 15s (8s per step); promoted after 3 windows",
    ]


class Streaming:
    def __init__(self, lags: list[tuple[int, int, int]]) -> None:
        self.lags = lags

    def status(self) -> StreamingStatus:
        events, features, archive = self.lags.pop(0) if len(self.lags) > 1 else self.lags[0]
        return StreamingStatus("fraud", "RUNNING", 500, events, features, archive, 0)


def test_the_backlog_counts_checkpointed_events_until_everything_is_in_feast() -> None:
    lines: list[str] = []
    streaming = Streaming([(500, 0, 500), (200, 40, 200), (0, 0, 0)])
    status = wait_caught_up(streaming, 500, 60, LinePhase("into Feast", lines.append, 0), poll_s=0)
    assert status.caught_up
    assert lines[:2] == [
        "into Feast: 0/500 events (0%), 0s so far",
        "into Feast: 0/500 events (0%), 0s so far; 500 events not yet archived",
    ]
    assert lines[2].startswith("into Feast: 300/500 events (60%), ")
    assert lines[2].endswith("; 40 feature rows not yet in Feast, 200 events not yet archived")
    assert lines[-1].startswith("into Feast: 500/500 events in ") and "0 dead letters" in lines[-1]
    stuck = Streaming([(0, 7, 0)])
    with pytest.raises(EmbeddedError, match="7 feature rows not yet in Feast"):
        wait_caught_up(stuck, 500, 0, line_phases(lines.append)("into Feast"), poll_s=0)


def test_without_rich_a_terminal_gets_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make tools`` runs on the system python, which may lack rich."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setitem(sys.modules, "rich.console", None)  # import fails, as without the package
    _, phases = for_stream(Tty())
    assert isinstance(phases("x"), LinePhase)


FAKE_GO = """#!/bin/sh
case "$1" in
  version) echo "go version go1.26.0 linux/amd64" ;;
  env) echo "" ;;
  build)
    echo "go: downloading example.com/a v1.0.0"
    for p in a a/b c; do echo "example.com/$p"; done
    if [ -n "$FAIL" ]; then echo "compile error"; exit 2; fi
    ;;
esac
"""


def test_the_go_build_counts_compiled_packages_as_a_phase(tmp_path: Path) -> None:
    binary = tmp_path / "go"
    binary.write_text(FAKE_GO)
    binary.chmod(0o755)
    lines: list[str] = []
    go = Go(binary, lines.append, line_phases(lines.append, interval_s=0))
    go.run(["build", "-v", "."], tmp_path, tmp_path / "build.log")
    assert go.packages_compiled == 3 and go.modules_downloaded == 1
    assert lines[0] == "  go build: 0 packages, 0s so far"
    assert lines[1].startswith("  go build: 0 packages, 0s so far; 1 modules downloaded")
    assert [line.split(",")[0] for line in lines[2:5]] == [f"  go build: {n} packages" for n in (1, 2, 3)]
    assert lines[-1].startswith("  go build: 3 packages in 0s (")
    with pytest.raises(ToolchainError, match="exit 2"):
        go.run(["build", "-v", "."], tmp_path, tmp_path / "build.log", env={"FAIL": "1"})
    assert lines[-1] == "  go build: stopped at 3 packages after 0s"


def test_a_warm_up_window_before_any_history_shows_the_share() -> None:
    """The rollout's warm-up is not recorded in its history: the first window's line reads the state's share
    (an empty history raised IndexError and crashed the demand demo)."""
    clock, lines, shown = Clock(), [], []
    state: dict[str, Any] = {"history": [], "outcome": None, "share": 20}
    phase = LinePhase("canary steps", lines.append, interval_s=0, clock=clock)
    phase.start(3, "steps")
    canary = CanaryProgress(phase, SimpleNamespace(state=lambda: state), shown.append)
    clock.now += 5
    canary.window(_analysis("inconclusive", ["warming up: the canary has served 12 of its first 50 requests"]))
    assert "window 1 at 20%: inconclusive (warming up" in lines[-1], lines
