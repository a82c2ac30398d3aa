"""Sliding windows of served and labelled rows per model version, kept as panes that add up.

A window of ``window_s`` sliding every ``slide_s`` is the sum of its ``window_s / slide_s`` panes, each one slide
long: a pane holds the rows whose time falls in it, reduced as soon as the version's profile is known to what the
statistics need (``contract.drift.WindowCounts`` per column, which add; counts of incomplete rows), except the
labelled predictions, kept as they are because the component's metric (ROC AUC, log loss) does not add across
panes. Every slide the window ending at that slide's boundary is summed and compared (``monitoring.stats``); panes
older than the window are dropped. Rows are placed by their own time (a served row by when it was scored, a
labelled one by its label's time, ``label_time``), so a restart that reads the topics again from one window back
rebuilds the same windows. A row is counted once per (request id, row): the inference log and the monitor job write
at least once, and a copy carries the same time, so it lands in the same pane and is recognised there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contract.drift import WindowCounts, window_counts
from contract.profile import NumericProfile, Profile
from monitoring.metrics import ABSENT, STALE
from monitoring.records import Labelled, Served

PREDICTIONS = "predictions"
"""The column name the predictions are counted under, beside the profiled columns."""


@dataclass(frozen=True)
class Panes:
    """Pane arithmetic: pane ``i`` covers ``[i * slide_ms, (i + 1) * slide_ms)``."""

    window_ms: int
    slide_ms: int

    def __post_init__(self) -> None:
        if self.slide_ms <= 0 or self.window_ms <= 0:
            raise ValueError(f"window ({self.window_ms} ms) and slide ({self.slide_ms} ms) must be positive")
        if self.window_ms % self.slide_ms:
            raise ValueError(f"the window ({self.window_ms} ms) must be a whole number of slides ({self.slide_ms} ms)")

    @property
    def count(self) -> int:
        """Panes per window."""
        return self.window_ms // self.slide_ms

    def pane(self, time_ms: int) -> int:
        return time_ms // self.slide_ms

    def window(self, end_ms: int) -> range:
        """The panes of the window ending at ``end_ms`` (exclusive): those that lie wholly before it."""
        last = self.pane(end_ms)  # the pane starting at end_ms (or holding it) is not yet complete
        return range(last - self.count, last)

    def boundary(self, now_ms: int) -> int:
        """The latest slide boundary at or before ``now_ms``: where the current window ends."""
        return self.pane(now_ms) * self.slide_ms


@dataclass
class Pane:
    """One version's rows in one pane."""

    rows: int = 0
    incomplete: dict[str, int] = field(default_factory=lambda: {STALE: 0, ABSENT: 0})
    counts: dict[str, WindowCounts] = field(default_factory=dict)
    """Column (or ``PREDICTIONS``) -> its counts against the version's profile, for the rows folded so far."""
    pending: list[Served] = field(default_factory=list)
    """Rows not yet folded into ``counts`` (the profile is loaded when the window is computed)."""
    labels: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    served_keys: set[tuple[str, int]] = field(default_factory=set)
    labelled_keys: set[tuple[str, int]] = field(default_factory=set)

    def fold(self, profile: Profile | None) -> None:
        """Reduce the pending rows to counts against ``profile`` (without one, drift cannot be counted)."""
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        if profile is None:
            return
        for name, reference in profile.columns.items():
            values = [row.values.get(name) for row in rows]
            if isinstance(reference, NumericProfile):
                # A value of the wrong type (text where training had numbers) counts as missing: a null-rate alert.
                values = [v if isinstance(v, int | float) else None for v in values]
            self._add(name, window_counts(reference, values, name))
        self._add(PREDICTIONS, window_counts(profile.predictions, [row.prediction for row in rows], PREDICTIONS))

    def _add(self, name: str, counts: WindowCounts) -> None:
        self.counts[name] = self.counts[name] + counts if name in self.counts else counts


@dataclass
class Window:
    """A version's window: its panes summed."""

    rows: int
    incomplete: dict[str, int]
    counts: dict[str, WindowCounts]
    labels: list[float]
    outputs: list[Any]


class VersionWindows:
    """Every version's panes; rows outside ``retention`` (older than a window before the newest boundary) are
    dropped on arrival."""

    def __init__(self, panes: Panes) -> None:
        self.panes = panes
        self.versions: dict[str, dict[int, Pane]] = {}
        self.oldest = -(2**62)
        """The first pane still kept (moved by ``evict``)."""
        self.late = 0
        """Rows dropped because their pane had already left the window."""
        self.duplicates = 0
        """Rows dropped because their (request id, row) was already counted (a copy has the same time and pane)."""

    def _pane(self, version: str, time_ms: int) -> Pane | None:
        index = self.panes.pane(time_ms)
        if index < self.oldest:
            self.late += 1
            return None
        return self.versions.setdefault(version, {}).setdefault(index, Pane())

    def add_served(self, row: Served) -> None:
        pane = self._pane(row.version, row.time_ms)
        if pane is None:
            return
        if row.key in pane.served_keys:
            self.duplicates += 1
            return
        pane.served_keys.add(row.key)
        pane.rows += 1
        if row.incomplete:
            pane.incomplete[row.incomplete] += 1
        pane.pending.append(row)

    def add_labelled(self, row: Labelled) -> None:
        pane = self._pane(row.version, row.time_ms)
        if pane is None:
            return
        if row.key in pane.labelled_keys:
            self.duplicates += 1
            return
        pane.labelled_keys.add(row.key)
        pane.labels.append(row.label)
        pane.outputs.append(row.output)

    def window(self, version: str, end_ms: int, profile: Profile | None) -> Window:
        """``version``'s window ending at ``end_ms``, its pending rows folded against ``profile`` first."""
        kept = self.versions.get(version, {})
        panes = [kept[i] for i in self.panes.window(end_ms) if i in kept]
        for pane in panes:
            pane.fold(profile)
        return _sum(panes)

    def evict(self, end_ms: int) -> None:
        """Drop the panes before the window ending at ``end_ms``, and versions left without any."""
        self.oldest = self.panes.window(end_ms).start
        for version in list(self.versions):
            panes = self.versions[version]
            for index in [i for i in panes if i < self.oldest]:
                del panes[index]
            if not panes:
                del self.versions[version]


def _sum(panes: Iterable[Pane]) -> Window:
    total = Window(0, {STALE: 0, ABSENT: 0}, {}, [], [])
    for pane in panes:
        total.rows += pane.rows
        for state, count in pane.incomplete.items():
            total.incomplete[state] += count
        for name, counts in pane.counts.items():
            total.counts[name] = total.counts[name] + counts if name in total.counts else counts
        total.labels.extend(pane.labels)
        total.outputs.extend(pane.outputs)
    return total
