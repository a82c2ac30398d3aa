"""Progress of long phases (the demo's backlog, training trials and canary steps; the toolchain's Go build).

On a terminal a phase is a rich progress bar with its counts, rate and time left; elsewhere (a CI log, a pipe, the
background build's log file) it is a few plain lines: one when the counts or the detail changed, at most every
``interval_s``, never the same line twice, and a summary with the rate at the end.

Standard library only at import: ``python3 -m devtools.pulumi_toolchain`` runs on the bare interpreter, so rich is
imported only when a bar is asked for, and ``for_stream`` falls back to lines when it cannot be imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

Emit = Callable[[str], None]
"""Where plain lines go (``print``, ``console.print``, a test's ``list.append``)."""


Phases = Callable[[str], "Phase"]
"""A phase's label -> its progress (``line_phases(emit)`` or ``bar_phases(console)``)."""


def _speed(rate: float, unit: str) -> str:
    """``1234 events/s``; below one a second, the time per unit reads better: ``12s per trial``."""
    if 0 < rate < 1:
        return f"{_duration(1 / rate)} per {unit.removesuffix('s')}"
    return f"{rate:.1f} {unit}/s" if rate < 10 else f"{rate:.0f} {unit}/s"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Phase:
    """One long phase: ``start(total, unit)``, then ``advance``/``update`` as work is done, then ``done``.

    The counting is shared by both displays (``LinePhase``, ``BarPhase``), which draw ``_show`` and ``_finish``.

    Used as a context manager, a phase left by an exception ends with a "stopped at" line instead of a summary.
    """

    def __init__(self, label: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.clock = clock
        self.total: int | None = None
        self.unit = ""
        self.completed = 0
        self.detail = ""
        self.began = clock()
        self.started = False
        self.finished = False

    # -- the protocol ---------------------------------------------------------------------------------------

    def start(self, total: int | None, unit: str) -> None:
        self.total, self.unit, self.began, self.started = total, unit, self.clock(), True
        self._show()

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        self.update(self.completed + n, detail)

    def update(self, completed: int, detail: str | None = None) -> None:
        self.completed = completed
        if detail is not None:
            self.detail = detail
        if self.started:
            self._show()

    def done(self, summary: str = "", completed: int | None = None) -> None:
        """End the phase with its summary line (nothing when it never started: the work did not happen);
        ``completed`` is the final count, when the summary should say it rather than one more status line."""
        if completed is not None:
            self.completed = completed
        if self.started and not self.finished:
            self.finished = True
            self._finish(self.summary_line(summary))

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.done()
        elif self.started and not self.finished:
            self.finished = True
            self._finish(f"{self.label}: stopped at {self._counts()} after {_duration(self.elapsed)}")

    # -- figures --------------------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return self.clock() - self.began

    @property
    def rate(self) -> float:
        """Units per second since ``start``."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def _counts(self) -> str:
        shown = f"{self.completed}/{self.total}" if self.total is not None else str(self.completed)
        return f"{shown} {self.unit}".rstrip()

    def status_line(self) -> str:
        """The phase now: counts, share, rate, time left (or elapsed, when the total is unknown), detail."""
        parts = [self._counts()]
        if self.total:
            parts[0] += f" ({100 * self.completed // self.total}%)"
        if self.completed:
            parts.append(_speed(self.rate, self.unit))
            if self.total and self.completed < self.total:
                parts.append(f"about {_duration((self.total - self.completed) / self.rate)} left")
        if not self.total or not self.completed:
            parts.append(f"{_duration(self.elapsed)} so far")
        line = f"{self.label}: {', '.join(parts)}"
        return f"{line}; {self.detail}" if self.detail else line

    def summary_line(self, summary: str = "") -> str:
        line = f"{self.label}: {self._counts()} in {_duration(self.elapsed)} ({_speed(self.rate, self.unit)})"
        return f"{line}; {summary}" if summary else line

    # -- display --------------------------------------------------------------------------------------------

    def _show(self) -> None:
        raise NotImplementedError

    def _finish(self, line: str) -> None:
        raise NotImplementedError


class LinePhase(Phase):
    """Plain lines: the state when it changed and ``interval_s`` passed since the last line; a summary at the end."""

    def __init__(
        self, label: str, emit: Emit, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(label, clock)
        self.emit = emit
        self.interval_s = interval_s
        self._shown: tuple[int, str] | None = None
        self._shown_at = float("-inf")

    def _show(self) -> None:
        state = (self.completed, self.detail)
        if state == self._shown or self.clock() - self._shown_at < self.interval_s:
            return
        self._shown, self._shown_at = state, self.clock()
        self.emit(self.status_line())

    def _finish(self, line: str) -> None:
        self.emit(line)


class BarPhase(Phase):
    """A rich progress bar on ``console`` (lines printed on that console meanwhile appear above it); it is
    replaced by the summary line when the phase ends."""

    def __init__(self, label: str, console: Any, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(label, clock)
        self.console = console
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int | None, unit: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Column

        if self._bar is None:
            # No stdout redirection: the training runner swaps sys.stdout while the bar runs, and a bar restoring
            # the stdout it saw at start would undo that. Lines printed on ``console`` still go above the bar.
            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}", markup=False),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}", markup=False),
                # The detail takes what room is left (cut short on a narrow terminal), never the counts'.
                TextColumn(
                    "{task.fields[detail]}",
                    markup=False,
                    table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1),
                ),
                console=self.console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(self.label, total=total, rate="", left="", detail="")
            self._bar.start()
        super().start(total, unit)

    def _show(self) -> None:
        if self._bar is None:
            return
        left = ""
        if self.total and self.completed and self.completed < self.total:
            left = f"{_duration((self.total - self.completed) / self.rate)} left"
        rate = _speed(self.rate, self.unit) if self.completed else ""
        self._bar.update(
            self._task, completed=self.completed, total=self.total, rate=rate, left=left, detail=self.detail
        )

    def _finish(self, line: str) -> None:
        if self._bar is not None:
            self._bar.stop()
        self.console.print(line, highlight=False, markup=False)


def line_phases(emit: Emit, interval_s: float = 10.0) -> Phases:
    """Every phase as plain lines through ``emit``."""
    return lambda label: LinePhase(label, emit, interval_s)


def bar_phases(console: Any) -> Phases:
    """Every phase as a rich bar on ``console`` (a ``rich.console.Console``)."""
    return lambda label: BarPhase(label, console)


def for_stream(stream: IO[str]) -> tuple[Emit, Phases]:
    """Lines and phases for a program writing to ``stream``: on a terminal, when rich can be imported, both through
    one console (so lines appear above a running bar); otherwise flushed prints and plain phases (the bare
    interpreter, a pipe, a log file)."""

    def emit(line: str) -> None:
        print(line, file=stream, flush=True)

    if not stream.isatty():
        return emit, line_phases(emit)
    try:
        from rich.console import Console
    except ImportError:
        return emit, line_phases(emit)
    console = Console(file=stream)
    return (lambda line: console.print(line, highlight=False, markup=False)), bar_phases(console)
