"""The demo's long phases as progress (``local.progress``): the backlog reaching Feast, a search's trials, the
canary's steps. Each reads what the phase already reports (the streaming status, the training pipeline's output,
the rollout's windows) and turns it into counts, instead of printing the same kind of line again and again."""

from __future__ import annotations

import re
import time
from typing import Any, Protocol

from contract.model import Metric
from local.errors import EmbeddedError
from local.progress import Emit, Phase
from local.streaming import StreamingStatus
from serving.rollout.analysis import Analysis


class Streaming(Protocol):
    """What the backlog phase reads of ``EmbeddedStreaming``."""

    def status(self) -> StreamingStatus: ...


def _pending(status: StreamingStatus) -> str:
    """What the backlog still waits for, beyond the job's checkpoints (the bar's count)."""
    parts = [] if status.job_state == "RUNNING" else [f"job {status.job_state}"]
    if status.features_lag:
        parts.append(f"{status.features_lag} feature rows not yet in Feast")
    if status.archive_lag:
        parts.append(f"{status.archive_lag} events not yet archived")
    return ", ".join(parts)


def wait_caught_up(
    streaming: Streaming, sent: int, timeout_s: float, phase: Phase, poll_s: float = 1.0
) -> StreamingStatus:
    """Until every event is checkpointed by the job, archived and its features are in Feast; ``phase`` counts
    the events the job has checkpointed (Flink commits on checkpoints, so the count moves in steps)."""
    phase.start(sent, "events")
    began = time.monotonic()
    while True:
        status = streaming.status()
        if status.caught_up:
            phase.done(f"features in Feast, events archived, {status.dead_letters} dead letters", completed=sent)
            return status
        phase.update(max(sent - status.events_lag, 0), _pending(status))
        if time.monotonic() - began > timeout_s:
            waiting = _pending(status) or f"{status.events_lag} events not yet checkpointed"
            raise EmbeddedError(f"streaming did not catch up within {timeout_s:.0f}s: {waiting}")
        time.sleep(poll_s)


# Ray Tune's lines (ray/tune/experimental/output.py at ray 2.60.0, TuneTerminalReporter: "Trial {} completed after
# N iterations at ..." / "errored after", then the trial's last result as a table whose rows are "│ score  0.91 │").
TRIAL_LINE = re.compile(r"^Trial \S+ (completed|errored) after")
TRIALS_PLANNED = re.compile(r"^Ray Tune: (\d+) trials")
SCORE_ROW = re.compile(r"^[│|]\s*score\s+(-?[\d.]+(?:e-?\d+)?)\s*[│|]$")


class TrialProgress:
    """A search's trials as a bar: trials ended out of planned, and the best score a trial ended with so far
    (the score of its last stage, as Ray Tune's own "current best trial" reports it).

    ``shown`` takes the lines the training runner passes on for a person and forwards all but the per-trial ones
    (the bar counts those); ``output`` takes every line of the runner's output, where the counts come from.
    """

    def __init__(self, phase: Phase, metric: Metric, emit: Emit) -> None:
        self.phase = phase
        self.metric = metric
        self.emit = emit
        self.best: float | None = None
        self.ended = 0
        self.errored = 0
        self._scoring = False

    def shown(self, line: str) -> None:
        if not TRIAL_LINE.match(line.strip()):
            self.emit(line)

    def output(self, line: str) -> None:
        line = line.strip()
        if planned := TRIALS_PLANNED.match(line):
            self.phase.start(int(planned.group(1)), "trials")
            return
        if trial := TRIAL_LINE.match(line):
            self.ended += 1
            self.errored += trial.group(1) == "errored"
            self._scoring = trial.group(1) == "completed"  # its score is in the table that follows
        elif self._scoring and (score := SCORE_ROW.match(line)):
            self._scoring = False
            value = float(score.group(1))
            if self.best is None or self.metric.better(value, self.best):
                self.best = value
        else:
            return
        last = self.phase.total is not None and self.ended >= self.phase.total
        if not last:
            self.phase.update(self.ended, self._detail())
        elif not self._scoring:  # the last trial's score is in: the summary says it all
            self.phase.done(self._detail(), completed=self.ended)

    def _detail(self) -> str:
        parts = [] if self.best is None else [f"best validation {self.metric.name} {self.best:.4f}"]
        if self.errored:
            parts.append(f"{self.errored} errored")
        return ", ".join(parts)


class CanaryProgress:
    """The canary's schedule as a bar: steps passed out of the schedule's, the share and the window being judged.

    ``line`` takes the rollout's per-window lines and forwards the decisive ones (a window still gathering traffic
    only updates the bar); ``window`` is the rollout's ``on_step``.
    """

    def __init__(self, phase: Phase, rollout: Any, emit: Emit) -> None:
        self.phase = phase
        self.rollout = rollout
        self.emit = emit
        self.windows = 0

    def line(self, line: str) -> None:
        if not line.endswith("-> waiting"):
            self.emit(line)

    def window(self, analysis: Analysis) -> None:
        self.windows += 1
        state = self.rollout.state() or {}
        # A warm-up window is not recorded in the history: the share is then the state's.
        judged = (state.get("history") or [{}])[-1].get("share", state.get("share", "?"))
        detail = f"window {self.windows} at {judged}%: {analysis.verdict}"
        if analysis.verdict == "inconclusive" and analysis.reasons:
            detail += f" ({analysis.reasons[0]})"
        passed = self.phase.completed + (analysis.verdict == "pass")
        if state.get("outcome"):  # the summary says it, with the verdict line just printed above it
            self.phase.done(f"{state['outcome']} after {self.windows} windows", completed=passed)
        else:
            self.phase.update(passed, detail)
