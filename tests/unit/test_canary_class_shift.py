"""The canary's check on a multiclass model's predicted classes (``contract.shift``): on seeded draws of analysis
windows, tied versions rarely fail and a gross shift is caught; the analysis, its snapshots and its readers carry
the classes; a tied challenger like the issue's (6 "very late" against 0) is not rolled back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.shift import class_shift
from serving.rollout.analysis import AnalysisConfig, Snapshot, analyse

CLASSES = ("on_time", "late", "very_late")
WINDOWS = 1000
LATENCY = {0.01: 0.0, 0.05: 1.0, math.inf: 1.0}


def _failure_rate(stable: tuple[float, ...], canary: tuple[float, ...], size: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    failed = 0
    for a, b in zip(rng.multinomial(size, stable, WINDOWS), rng.multinomial(size, canary, WINDOWS), strict=True):
        failed += class_shift(dict(zip(CLASSES, a, strict=True)), dict(zip(CLASSES, b, strict=True))).shifted()
    return failed / WINDOWS


@pytest.mark.parametrize("shares", [(0.60, 0.30, 0.10), (0.60, 0.38, 0.02), (0.72, 0.23, 0.05)])
@pytest.mark.parametrize("size", [100, 200])
def test_tied_versions_fail_at_most_one_window_in_a_hundred(shares: tuple[float, ...], size: int) -> None:
    assert _failure_rate(shares, shares, size, seed=size) <= 0.01


def test_a_gross_shift_fails_nine_windows_in_ten_at_200_requests_per_side() -> None:
    """very_late from 10% to 30% of predictions (Cramér's V 0.25)."""
    assert _failure_rate((0.60, 0.30, 0.10), (0.4667, 0.2333, 0.30), 200, seed=7) >= 0.9


def test_the_issues_tied_window_passes_and_a_shifted_one_fails() -> None:
    """One 100-request window: 6 "very late" against 0 (PSI with a 1e-4 floor said 0.36 and rolled it back)."""
    stable = Snapshot(100, 0, LATENCY, classes={"on_time": 70, "late": 30, "very_late": 0})
    tied = Snapshot(100, 0, LATENCY, classes={"on_time": 64, "late": 30, "very_late": 6})
    result = analyse(stable, tied, AnalysisConfig())
    assert result.verdict == "pass", result.summary
    assert result.shift.statistic == "chi-square" and "chi-square p" in result.summary

    shifted = Snapshot(100, 0, LATENCY, classes={"on_time": 40, "late": 25, "very_late": 35})
    result = analyse(stable, shifted, AnalysisConfig())
    assert result.verdict == "fail" and "predicted classes shifted: chi-square p" in result.summary
    assert "Cramér's V" in result.summary


def test_class_counts_difference_over_a_window_and_the_test_drops_empty_classes() -> None:
    earlier = Snapshot(50, 0, classes={"on_time": 30.0, "late": 20.0})
    now = Snapshot(250, 0, classes={"on_time": 150.0, "late": 80.0, "very_late": 20.0})
    assert now.minus(earlier).classes == {"on_time": 120.0, "late": 60.0, "very_late": 20.0}
    test = class_shift({"a": 50, "b": 50, "never": 0}, {"a": 48, "b": 52})
    assert test.classes == ("a", "b") and test.dof == 1 and not test.shifted()
    assert math.isnan(class_shift({"a": 10}, {"a": 12}).p_value), "one class: nothing to test"
    assert class_shift({"a": 100}, {"b": 100}).cramers_v == pytest.approx(1.0)
    with pytest.raises(ValueError, match="class 'a' has count -1"):
        class_shift({"a": -1}, {"a": 1})
