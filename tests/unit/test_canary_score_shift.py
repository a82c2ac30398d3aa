"""The canary's check on scores (a binary classifier's probabilities): the histogram's buckets merged into groups
of equal mass under the stable version and tested as classes are. On seeded windows of fraud-like scores, tied
versions rarely fail, even with a small canary side, and the shifted challenger of the rollout tests is caught
in almost every window; the window that rolled a re-registered champion back in CI on PSI passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serving.metrics import PROBABILITY_BUCKETS
from serving.rollout.analysis import AnalysisConfig, Snapshot, analyse, prediction_shift, score_groups

WINDOWS = 1000
BOUNDS = (*map(float, PROBABILITY_BUCKETS), math.inf)
LATENCY = {0.01: 0.0, 0.05: 1.0, math.inf: 1.0}


def _histogram(scores: np.ndarray) -> dict[float, float]:
    """Cumulative counts per bucket bound, as the model server's Prometheus histogram holds them."""
    return {le: float(np.count_nonzero(scores <= le)) for le in BOUNDS}


def _window(scores: np.ndarray) -> Snapshot:
    return Snapshot(len(scores), 0, {le: float(len(scores)) for le in LATENCY}, _histogram(scores))


def _fraud_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """Most transactions score near 0, a tail of suspicious ones higher, as the fraud model's do."""
    return rng.beta(0.6, 6.0, size)


def _failure_rate(stable_size: int, canary_size: int, seed: int, shifted: bool = False) -> float:
    rng = np.random.default_rng(seed)
    failed = 0
    for _ in range(WINDOWS):
        canary = _fraud_like(rng, canary_size)
        if shifted:
            canary = 0.3 + 0.7 * canary  # tests/local/broken_models.Shifted
        failed += prediction_shift(_window(_fraud_like(rng, stable_size)), _window(canary), AnalysisConfig()).failed
    return failed / WINDOWS


@pytest.mark.parametrize(("stable_size", "canary_size"), [(400, 77), (300, 100), (200, 200), (1000, 1000)])
def test_tied_versions_fail_at_most_one_window_in_a_hundred(stable_size: int, canary_size: int) -> None:
    assert _failure_rate(stable_size, canary_size, seed=canary_size) <= 0.01


@pytest.mark.parametrize("canary_size", [50, 100])
def test_the_shifted_challenger_fails_nearly_every_window(canary_size: int) -> None:
    assert _failure_rate(400, canary_size, seed=3, shifted=True) >= 0.99


def test_a_group_empty_on_a_small_canary_side_is_chance_not_a_shift() -> None:
    """The CI window: stable's scores above 0.05 are 5% of its 400, and none of the canary's 77 are (chance: 2%).
    PSI with its floor for the empty group said 0.3 and rolled the same model back."""
    stable = {0.05: 380.0, 0.1: 390.0, 0.5: 398.0, 1.0: 400.0, math.inf: 400.0}
    canary = {0.05: 77.0, 0.1: 77.0, 0.5: 77.0, 1.0: 77.0, math.inf: 77.0}
    shift = prediction_shift(Snapshot(400, predictions=stable), Snapshot(77, predictions=canary), AnalysisConfig())
    assert shift.psi > 0.25, "the defect: PSI with a floor calls this a large shift"
    assert not shift.failed and shift.value > AnalysisConfig().class_alpha, shift


def test_groups_hold_equal_mass_of_stables_scores_and_the_verdict_names_the_test() -> None:
    rng = np.random.default_rng(11)
    stable, canary = _histogram(_fraud_like(rng, 5000)), _histogram(_fraud_like(rng, 500))
    groups = score_groups(stable, canary, 5)
    assert sum(a for a, _ in groups) == 5000 and sum(b for _, b in groups) == 500
    assert all(a >= 1000 for a, _ in groups[:-1]), groups
    assert score_groups(stable, {}, 5) == [], "a side without scores: nothing to compare"

    shifted = _window(0.3 + 0.7 * _fraud_like(rng, 200))
    result = analyse(_window(_fraud_like(rng, 1000)), shifted, AnalysisConfig())
    assert result.verdict == "fail" and "prediction scores shifted: chi-square p" in result.summary
    assert "Cramér's V" in result.summary and "PSI" in result.summary
    assert result.shift.statistic == "score chi-square"
