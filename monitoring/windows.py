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

Drift is measured on examples, not requests (``Window.examples``, ``Window.observations``), because the drift test
takes its counts as independent draws and the profile weights each training example once:

- a row equal to one already in the pane (same entity keys, request fields, features and prediction) is the same
  example asked again, and counts once. Demand is asked once per order but trained once per zone and minute: every
  order of a zone in a minute sends the same ``forecast_id`` and reads the same zone snapshot, so it repeats one
  example. Fraud's and delivery's requests carry their own transaction or order id, so none is a repeat and their
  rows keep the per-transaction weighting their training has (a per-(entity, value) rule would re-weight fraud's
  merchant features, which training weights by transaction);
- an online feature is a windowed aggregate of its entity: its values less than one feature window apart share
  most of their events and move together, and an equal value is most likely one snapshot read again. So a
  feature's ``observations``, the independent draws the window holds, are per entity the fewer of its feature
  windows (aligned ``time // size``) and its distinct values, summed over entities; the statistics scale the
  examples' counts down to that many (``monitoring.stats``). A 10-minute window of demand's 12 zones is a few dozen
  draws, not the hundreds of forecasts it served; a fraud window's cards are nearly all distinct, so their features
  barely move, while its 60 merchants' count for what they are. A profile counts its training rows' draws by the
  same rule (``NumericProfile.independent_share``), so both sides of the test are draws.

The quality rates (null, out of range, unseen) stay per row (``Window.counts``): they are shares of requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from contract import Component
from contract.drift import WindowCounts, window_counts
from contract.profile import NumericProfile, Profile, independent_draws
from monitoring.metrics import ABSENT, STALE
from monitoring.records import Labelled, Served

PREDICTIONS = "predictions"
"""The column name the predictions are counted under, beside the profiled columns."""

View = tuple[str, int]
"""A feature view as drift sees it: (the entity key it is read by, its window length in ms)."""


def feature_views(component: Component) -> dict[str, View]:
    """Each served feature column (``<view>__<feature>``) -> its view's entity key and window length."""
    groups = set(component.feature_groups())
    return {
        f"{g.name}__{feature}": (g.entity, g.window.size_s * 1000)
        for g in component.streaming.groups
        if g.name in groups
        for feature in g.feature_names()
    }


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
    examples: dict[str, WindowCounts] = field(default_factory=dict)
    """The same for the pane's distinct examples (module docstring): what drift is measured on."""
    pending: list[Served] = field(default_factory=list)
    """Rows not yet folded into ``counts`` (the profile is loaded when the window is computed)."""
    pending_examples: list[Served] = field(default_factory=list)
    """The first row of each distinct example among ``pending``."""
    example_ids: set[bytes] = field(default_factory=set)
    """Digests of the pane's distinct examples."""
    observations: dict[str, set[tuple[str, int, Any]]] = field(default_factory=dict)
    """Feature column -> the (entity, feature window, value) it was read at."""
    labels: list[float] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    served_keys: set[tuple[str, int]] = field(default_factory=set)
    labelled_keys: set[tuple[str, int]] = field(default_factory=set)

    def fold(self, profile: Profile | None) -> None:
        """Reduce the pending rows to counts against ``profile`` (without one, drift cannot be counted)."""
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        examples, self.pending_examples = self.pending_examples, []
        if profile is None:
            return
        _add(self.counts, _counts(profile, rows))
        _add(self.examples, _counts(profile, examples))


def _counts(profile: Profile, rows: list[Served]) -> dict[str, WindowCounts]:
    counts = {}
    for name, reference in profile.columns.items():
        values = [row.values.get(name) for row in rows]
        if isinstance(reference, NumericProfile):
            # A value of the wrong type (text where training had numbers) counts as missing: a null-rate alert.
            values = [v if isinstance(v, int | float) else None for v in values]
        counts[name] = window_counts(reference, values, name)
    counts[PREDICTIONS] = window_counts(profile.predictions, [row.prediction for row in rows], PREDICTIONS)
    return counts


def _add(total: dict[str, WindowCounts], counts: Mapping[str, WindowCounts]) -> None:
    for name, more in counts.items():
        total[name] = total[name] + more if name in total else more


@dataclass
class Window:
    """A version's window: its panes summed."""

    rows: int
    incomplete: dict[str, int]
    counts: dict[str, WindowCounts]
    labels: list[float]
    outputs: list[Any]
    examples: dict[str, WindowCounts] = field(default_factory=dict)
    """``counts`` over the distinct examples (module docstring)."""
    observations: dict[str, int] = field(default_factory=dict)
    """Feature column -> the independent draws its values are (module docstring); absent for request fields and
    predictions."""


class VersionWindows:
    """Every version's panes; rows outside ``retention`` (older than a window before the newest boundary) are
    dropped on arrival."""

    def __init__(self, panes: Panes, views: Mapping[str, View] | None = None) -> None:
        self.panes = panes
        self.views = dict(views or {})
        """Feature column -> its view (``feature_views``); columns not named here are not reduced to observations."""
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
        # A digest, not the row: a pane keeps one per distinct example.
        example = hashlib.blake2b(orjson.dumps([row.values, row.prediction], option=orjson.OPT_SORT_KEYS)).digest()
        if example not in pane.example_ids:
            pane.example_ids.add(example)
            pane.pending_examples.append(row)
        for name, (entity, length_ms) in self.views.items():
            key, value = row.values.get(entity), row.values.get(name)
            if key is not None and value is not None:
                value = value if isinstance(value, int | float | str) else repr(value)  # hashable
                pane.observations.setdefault(name, set()).add((str(key), row.time_ms // length_ms, value))

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
        total = _sum(panes)
        total.observations = {
            name: _observations(pane.observations.get(name, set()) for pane in panes) for name in self.views
        }
        return total

    def evict(self, end_ms: int) -> None:
        """Drop the panes before the window ending at ``end_ms``, and versions left without any."""
        self.oldest = self.panes.window(end_ms).start
        for version in list(self.versions):
            panes = self.versions[version]
            for index in [i for i in panes if i < self.oldest]:
                del panes[index]
            if not panes:
                del self.versions[version]


def _observations(reads: Iterable[set[tuple[str, int, Any]]]) -> int:
    """``contract.profile.independent_draws`` over the panes' reads (module docstring). Sets, not counts per pane:
    one feature window, and one value, span several panes."""
    return independent_draws(read for pane in reads for read in pane)


def _sum(panes: Iterable[Pane]) -> Window:
    total = Window(0, {STALE: 0, ABSENT: 0}, {}, [], [])
    for pane in panes:
        total.rows += pane.rows
        for state, count in pane.incomplete.items():
            total.incomplete[state] += count
        _add(total.counts, pane.counts)
        _add(total.examples, pane.examples)
        total.labels.extend(pane.labels)
        total.outputs.extend(pane.outputs)
    return total
