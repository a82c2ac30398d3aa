"""Online evaluation's statistics (contract.live_evaluation), measured on versions whose true gap is known: how often
two equal versions are called better or worse (false verdicts), how often a clearly worse one is caught, and the
bootstrap's standard error against the spread of the score over independent samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from contract.live_evaluation import Estimate, compare, estimate
from contract.model import Metric

MAE = Metric("mae", "min", lambda y, p: float(np.mean(np.abs(y - p))), tolerance=0.05)
AUC = Metric("roc_auc", "max", lambda y, p: float(roc_auc_score(y, p)), tolerance=0.02)


def regression(rng: np.random.Generator, n: int, error: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions whose mean absolute error is ``error`` (Laplace noise of that scale)."""
    y = rng.normal(10, 3, n)
    return y, y + rng.laplace(0, error, n)


def verdicts(n: int, stable_error: float, canary_error: float, trials: int, tolerance: float) -> dict[str, float]:
    rng = np.random.default_rng(7)
    counts: dict[str, int] = {}
    for trial in range(trials):
        stable = estimate(MAE, *regression(rng, n, stable_error), seed=trial)
        canary = estimate(MAE, *regression(rng, n, canary_error), seed=trial + 10_000)
        verdict = compare(MAE, stable, canary, min_labels=n, tolerance=tolerance).verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    return {verdict: count / trials for verdict, count in counts.items()}


def test_equal_versions_are_rarely_called_better_or_worse() -> None:
    # With no tolerance each is a one-sided 2.5% error at 95% confidence; 300 trials measure it to about +-1%.
    rates = verdicts(n=300, stable_error=1.0, canary_error=1.0, trials=300, tolerance=0.0)
    assert rates.get("better", 0) <= 0.05 and rates.get("worse", 0) <= 0.05, rates
    with_tolerance = verdicts(n=300, stable_error=1.0, canary_error=1.0, trials=300, tolerance=MAE.tolerance)
    assert with_tolerance.get("worse", 0) <= 0.01, with_tolerance


def test_a_canary_worse_by_four_tolerances_is_caught_and_never_called_not_worse() -> None:
    rates = verdicts(n=2000, stable_error=1.0, canary_error=1.2, trials=100, tolerance=MAE.tolerance)
    assert rates.get("worse", 0) >= 0.9, rates
    assert rates.get("not worse", 0) + rates.get("better", 0) == 0, rates


def test_the_bootstrap_error_matches_the_spread_over_independent_samples() -> None:
    rng = np.random.default_rng(3)
    values = [MAE.score(*regression(rng, 400, 1.0)) for _ in range(300)]
    estimated = estimate(MAE, *regression(rng, 400, 1.0)).stderr
    assert estimated == pytest.approx(float(np.std(values, ddof=1)), rel=0.2)


def test_too_few_labels_wait_and_a_score_the_metric_cannot_judge_is_undecided() -> None:
    rng = np.random.default_rng(1)
    y = np.zeros(300, dtype=int)
    y[0] = 1  # one positive: a resample leaves it out 37% of the time, and ROC AUC is undefined there
    thin = estimate(AUC, y, rng.random(300))
    assert thin.count == 300 and math.isinf(thin.stderr)
    solid = Estimate(0.9, 0.01, 300)
    assert compare(AUC, solid, thin).verdict == "undecided", "an infinite error decides nothing"
    waiting = compare(AUC, solid, Estimate(0.95, 0.01, 150), min_labels=200)
    assert waiting.verdict == "waiting" and "waiting for labels (stable 300, canary 150)" in waiting.summary(AUC)


def test_the_direction_of_the_metric_orients_the_gain() -> None:
    better = compare(AUC, Estimate(0.90, 0.005, 500), Estimate(0.95, 0.005, 500))
    assert better.verdict == "better" and better.gain == pytest.approx(0.05)
    lower_error = compare(MAE, Estimate(1.2, 0.01, 500), Estimate(1.0, 0.01, 500))
    assert lower_error.verdict == "better" and lower_error.gain == pytest.approx(0.2)
    close = compare(MAE, Estimate(1.0, 0.01, 500), Estimate(1.01, 0.01, 500))
    assert close.verdict == "not worse", close


def test_mismatched_inputs_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="3 labels for 2 predictions"):
        estimate(MAE, np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"confidence 1\.5"):
        compare(MAE, Estimate(1, 0.1, 500), Estimate(1, 0.1, 500), confidence=1.5)
