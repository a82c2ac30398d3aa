"""Drift and data quality of a window of served values against a version's profile (``contract.profile``).

Per column (a request field, a raw feature, or the predictions), over the window's non-null values:

- PSI over the profile's bins (numeric) or categories (categorical; a category training never saw is a bin of its
  own, whose reference share is ``contract.shift.PSI_FLOOR``), less the sampling noise of the two sizes: the same
  ``contract.shift.psi`` the canary uses on prediction histograms. The reference's size is its independent draws
  (``reference_counts``): a windowed feature's training rows repeat their entity's window state, and a control
  run's first model, trained on 11 minutes of 60 merchants' one-hour sums, saw a PSI of 0.33 by chance when each
  row counted as a draw;
- the chi-square test of homogeneity of the reference's and the window's counts over the same bins
  (``contract.shift.class_shift``, scipy's ``chi2_contingency``): its p-value accounts for the window's size, so a
  PSI that is large only because the window is small does not count. A two-sample test rather than goodness of fit
  against the profile's shares, because the profile is itself a sample (a version trained on a few thousand rows
  must not make its sampling noise the window's drift). Not Kolmogorov-Smirnov: it needs the raw training values,
  which a profile does not keep, and it does not apply to categories;
- quality: null rate (of all rows) beside the training one, the share of values outside the training range
  (numeric), the share of values in categories training never saw (categorical), each beside the holdout's own
  share (``contract.profile``: what data the model never fit shows by nature).

Drift is a PSI above a threshold *and* a p-value below a level (``ColumnDrift.drifted``); the shipped thresholds
are ``monitoring.alert_rules.Thresholds`` (PSI 0.2, p 0.01), which decide the alerts on the series the monitor
exports from these numbers. ``benchmarks/drift_alarms.py`` measures the rule's false and missed alarms.

Why not Evidently (0.7.23, checked against the main environment): it installs without moving a pin, but adds 25
packages (a web framework, nltk, plotly, statsmodels, telemetry) to an environment the monitor shares with the
streaming job, and its drift tests take the reference *data* (two raw samples, bins rebuilt from both at every
call), not a stored profile; its PSI has no correction for the window's size. The statistics here are a few lines
over scipy.stats.

``WindowCounts`` add up (``+``), so a sliding-window monitor can keep one per pane and compare their sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from contract.profile import CategoricalProfile, ColumnProfile, NumericProfile, Profile
from contract.shift import class_shift, psi


@dataclass(frozen=True)
class WindowCounts:
    """One column's window, reduced to what the comparison needs."""

    rows: int
    nulls: int
    counts: dict[str, int]
    """Bin index (numeric, as text) or category -> non-null values."""
    out_of_range: int = 0
    """Numeric: non-null values below the training minimum or above its maximum."""

    def __add__(self, other: WindowCounts) -> WindowCounts:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        return WindowCounts(
            self.rows + other.rows, self.nulls + other.nulls, counts, self.out_of_range + other.out_of_range
        )


@dataclass(frozen=True)
class ColumnDrift:
    """One column's window against its reference."""

    rows: int
    """Rows in the window, nulls included."""
    psi: float
    """NaN when either side has no non-null value."""
    p_value: float
    """The chi-square test's; NaN when there is nothing to test (no values, or a single bin on both sides)."""
    null_rate: float
    reference_null_rate: float
    out_of_range_rate: float = math.nan
    """Numeric: share of the non-null values outside the training range; NaN for categories."""
    reference_out_of_range_rate: float = math.nan
    """Numeric: the holdout's share outside the training range; NaN for categories."""
    unseen_rate: float = math.nan
    """Categorical: share of the non-null values in categories training never saw; NaN for numbers."""
    reference_unseen_rate: float = math.nan
    """Categorical: the holdout's share in categories training never saw; NaN for numbers."""
    unseen: tuple[str, ...] = ()
    """Those categories, most frequent first (at most ten)."""

    def drifted(self, max_psi: float, alpha: float) -> bool:
        """PSI above ``max_psi`` and the test significant at ``alpha`` (both are needed: module docstring)."""
        return self.psi > max_psi and self.p_value < alpha


def window_counts(reference: ColumnProfile, values: Iterable[Any], column: str = "values") -> WindowCounts:
    """Count ``values`` (None and NaN are nulls) into ``reference``'s bins or categories."""
    import numpy as np
    import pandas as pd

    series = pd.Series(list(values), dtype="object")
    present = series[series.notna()]
    if isinstance(reference, CategoricalProfile):
        counts = {str(k): int(v) for k, v in present.astype(str).value_counts().items()}
        return WindowCounts(len(series), len(series) - len(present), counts)
    try:
        numbers = pd.to_numeric(present, errors="raise").to_numpy(dtype="float64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"column {column!r} is numeric in the profile, but the window holds {error}") from None
    numbers = numbers[~np.isnan(numbers)]
    nulls = len(series) - len(numbers)
    bins = np.bincount(reference.bin_of(numbers), minlength=len(reference.counts)) if len(numbers) else np.zeros(0)
    outside = 0
    if reference.minimum is not None and reference.maximum is not None:
        outside = int(((numbers < reference.minimum) | (numbers > reference.maximum)).sum())
    return WindowCounts(len(series), nulls, {str(i): int(c) for i, c in enumerate(bins) if c}, outside)


def reference_counts(reference: ColumnProfile) -> dict[str, float]:
    """The reference's bins (as text) or categories -> its independent draws in them: the training counts times
    ``NumericProfile.independent_share`` (a windowed feature's rows repeat their entity's state)."""
    if isinstance(reference, NumericProfile):
        return {str(i): c * reference.independent_share for i, c in enumerate(reference.counts)}
    return {name: float(c) for name, c in reference.categories.items()}


def compare(reference: ColumnProfile, window: WindowCounts) -> ColumnDrift:
    """PSI, the chi-square test and the quality shares of ``window`` against ``reference``."""
    expected = reference_counts(reference)
    keys = list(expected) + sorted(k for k in window.counts if k not in expected)
    ref = [expected.get(k, 0.0) for k in keys]
    new = [float(window.counts.get(k, 0)) for k in keys]
    # Bins empty on both sides carry nothing, and would count as bins in the PSI's noise correction.
    kept = [(a, b) for a, b in zip(ref, new, strict=True) if a or b]
    index = psi([a for a, _ in kept], [b for _, b in kept]) if kept else math.nan
    test = class_shift(expected, {k: float(v) for k, v in window.counts.items()})
    values = window.rows - window.nulls
    null_rate = window.nulls / window.rows if window.rows else math.nan
    found = ColumnDrift(window.rows, index, test.p_value, null_rate, reference.null_rate)
    if isinstance(reference, NumericProfile):
        outside = window.out_of_range / values if values else math.nan
        return replace(found, out_of_range_rate=outside, reference_out_of_range_rate=reference.holdout_out_of_range)
    unseen = sorted((k for k in window.counts if k not in expected), key=lambda k: -window.counts[k])
    unseen_rate = sum(window.counts[k] for k in unseen) / values if values else math.nan
    return replace(
        found, unseen_rate=unseen_rate, reference_unseen_rate=reference.holdout_unseen, unseen=tuple(unseen[:10])
    )


def column_drift(reference: ColumnProfile, values: Iterable[Any], column: str = "values") -> ColumnDrift:
    """``compare`` on the counts of ``values``."""
    return compare(reference, window_counts(reference, values, column))


def window_drift(profile: Profile, window: Mapping[str, Iterable[Any]]) -> dict[str, ColumnDrift]:
    """Every profiled column that ``window`` holds (a DataFrame or a mapping of columns), by name."""
    return {name: column_drift(ref, window[name], name) for name, ref in profile.columns.items() if name in window}


def prediction_drift(profile: Profile, predictions: Any) -> ColumnDrift:
    """The window's predictions against the holdout's: scores or estimates; for multiclass, either the predicted
    classes (names) or the per-class probabilities (the most probable class is taken, as the server's label)."""
    import numpy as np

    reference = profile.predictions
    if isinstance(reference, CategoricalProfile):
        array = np.asarray(predictions)
        if array.ndim == 2:
            names = list(reference.categories)
            if array.shape[1] != len(names):
                raise ValueError(f"{array.shape[1]} probability columns for {len(names)} classes ({', '.join(names)})")
            predictions = [names[i] for i in array.argmax(axis=1)]
    return column_drift(reference, predictions, "predictions")
