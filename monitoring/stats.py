"""What the monitor exporter says about one version's window: the component's metric on the labelled predictions,
calibration, drift and data quality against the version's profile (``contract.drift``).

- live metric: ``Metric.score`` on the window's labels and outputs (``encode_target``'s labels, ``predict``'s
  outputs), published only from ``min_labels`` labelled predictions (the alert rule's ``Thresholds.min_labels``
  by default) and when the metric is defined (ROC AUC needs both classes); the count is published always;
- calibration, from the same ``min_labels``: binary, the mean predicted probability of the positive class and the
  observed positive rate; regression, the mean estimate and the mean label; multiclass, of the predicted class:
  its mean probability (confidence) and the share of rows whose label is that class (accuracy), one pair whatever
  the number of classes, equal for a calibrated model;
- the live metric's standard error: a bootstrap over the same labelled predictions (``contract.live_evaluation``),
  +Inf when too many resamples leave the metric undefined; the canary compares versions with it;
- shortfall: ``monitoring.metrics.shortfall`` of the live metric against the holdout score (positive = worse),
  beside the holdout score's own standard error (registration's bootstrap): the alert weighs both noises;
- drift (PSI, p-value) on the window's distinct examples, their counts scaled down to the independent draws the
  window holds (``monitoring.windows``' docstring says why): a feature's to its view's observations, the
  predictions' to the largest of the columns' (a prediction is as independent as its most independent input, e.g.
  fraud's per-transaction amount); the quality rates on every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from contract.drift import ColumnDrift, WindowCounts, compare, reference_counts
from contract.live_evaluation import estimate
from contract.model import ModelSpec
from contract.profile import ColumnProfile, Profile
from contract.shift import class_shift, psi
from monitoring.metrics import ABSENT, STALE, shortfall
from monitoring.windows import PREDICTIONS, Window


@dataclass(frozen=True)
class VersionStats:
    """One version's window, in the numbers the series carry (NaN: not published)."""

    version: str
    rows: int
    labelled: int
    live_metric: float = math.nan
    holdout_metric: float = math.nan
    shortfall: float = math.nan
    mean_predicted: float = math.nan
    mean_observed: float = math.nan
    incomplete: dict[str, float] = field(default_factory=dict)
    """``stale``/``absent`` -> share of the window's rows (empty without rows)."""
    columns: dict[str, ColumnDrift] = field(default_factory=dict)
    """Profiled column -> drift and quality (empty without a profile or rows)."""
    predictions: ColumnDrift | None = None
    error: str = ""
    """Why the live metric is missing although there were enough labels (the metric raised)."""
    live_stderr: float = math.nan
    """The live metric's bootstrap standard error (+Inf when too thin to judge; NaN when there is no live metric)."""
    holdout_stderr: float = 0.0
    """The holdout score's bootstrap standard error, kept at registration (0 when it was not)."""


def live_metric(model: ModelSpec, labels: list[float], outputs: list[object]) -> float:
    """``model.metric`` on the labelled predictions; raises what the metric raises (e.g. one class only)."""
    y, out = _scored(model, labels, outputs)
    return float(model.metric.score(y, out))


def live_stderr(model: ModelSpec, labels: list[float], outputs: list[object]) -> float:
    """The live metric's bootstrap standard error (``contract.live_evaluation.estimate``)."""
    return estimate(model.metric, *_scored(model, labels, outputs)).stderr


def _scored(model: ModelSpec, labels: list[float], outputs: list[object]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype="int64" if model.task != "regression" else "float64")
    return y, np.asarray(outputs, dtype="float64")


def calibration(model: ModelSpec, labels: list[float], outputs: list[object]) -> tuple[float, float]:
    """(mean predicted, mean observed) as the module docstring defines them."""
    y = np.asarray(labels, dtype="float64")
    out = np.asarray(outputs, dtype="float64")
    if model.task == "multiclass":
        predicted = out.argmax(axis=1)
        return float(out.max(axis=1).mean()), float((predicted == y).mean())
    return float(out.mean()), float(y.mean())


def version_stats(
    model: ModelSpec,
    version: str,
    window: Window,
    profile: Profile | None,
    holdout: float,
    min_labels: int,
    holdout_stderr: float = 0.0,
) -> VersionStats:
    labelled = len(window.labels)
    live = predicted = observed = stderr = math.nan
    error = ""
    if labelled >= min_labels:
        try:
            live = live_metric(model, window.labels, window.outputs)
        except Exception as failure:  # the component's metric: ROC AUC over one class raises, and so may others
            error = f"{model.metric.name} undefined on this window: {failure}"
        else:
            stderr = live_stderr(model, window.labels, window.outputs)
        predicted, observed = calibration(model, window.labels, window.outputs)
    gap = shortfall(model.metric, live, holdout) if math.isfinite(live) and math.isfinite(holdout) else math.nan
    incomplete = {state: window.incomplete[state] / window.rows for state in (STALE, ABSENT)} if window.rows else {}
    columns: dict[str, ColumnDrift] = {}
    predictions = None
    if profile is not None and window.rows:
        # A column is missing when its rows arrived while the profile could not be read (nothing was counted).
        counts, examples = window.counts, window.examples
        shares = {
            name: _share(examples[name], window.observations.get(name)) for name in profile.columns if name in counts
        }
        columns = {name: drift(profile.columns[name], counts[name], examples[name], s) for name, s in shares.items()}
        if PREDICTIONS in counts:
            share = max(shares.values(), default=1.0)
            predictions = drift(profile.predictions, counts[PREDICTIONS], examples[PREDICTIONS], share)
    return VersionStats(
        version,
        window.rows,
        labelled,
        live,
        holdout,
        gap,
        predicted,
        observed,
        incomplete,
        columns,
        predictions,
        error,
        live_stderr=stderr,
        holdout_stderr=holdout_stderr,
    )


def _share(examples: WindowCounts, observations: int | None) -> float:
    """The independent draws per distinct example: 1 for request fields (no view), else observations / values."""
    values = sum(examples.counts.values())
    return 1.0 if observations is None or not values else min(1.0, observations / values)


def drift(reference: ColumnProfile, rows: WindowCounts, examples: WindowCounts, share: float) -> ColumnDrift:
    """Quality of ``rows``; PSI and chi-square p-value of ``examples`` with their counts times ``share``: the same
    statistics as ``contract.drift.compare``, whose size-aware parts (the PSI's noise correction, the test) then
    see the number of independent draws."""
    quality = compare(reference, rows)
    if share >= 1.0:
        found = compare(reference, examples)
        return replace(quality, psi=found.psi, p_value=found.p_value)
    expected = reference_counts(reference)
    actual = {key: count * share for key, count in examples.counts.items()}
    keys = list(expected) + sorted(k for k in actual if k not in expected)
    # Bins empty on both sides carry nothing (as in ``compare``).
    kept = [(expected.get(k, 0.0), actual.get(k, 0.0)) for k in keys if expected.get(k) or actual.get(k)]
    index = psi([a for a, _ in kept], [b for _, b in kept]) if kept else math.nan
    return replace(quality, psi=index, p_value=class_shift(expected, actual).p_value)
