"""The performance alert's false and missed alarms on the fraud component's own model, a small seeded version of
``benchmarks/live_metric_alarms.py``: windows of labelled predictions of a champion from the stationary stream after
its training, and from after a regime change, scored as the exporter scores them (live ROC AUC, bootstrap standard
error, shortfall against the holdout score) and judged by the shipped rule's condition."""

from __future__ import annotations

import pytest

from benchmarks.live_metric_alarms import World, windows, world
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T

pytestmark = pytest.mark.unit

SIZE, COUNT = 400, 6
"""Twice the label floor; each window's bootstrap is 400 scores, so a handful of windows per side."""


@pytest.fixture(scope="module")
def fraud() -> World:
    return world(30_000, seed=11, change_share=0.5)  # as test_regime_change: ROC AUC ~0.92 -> ~0.76


def test_noise_alone_fires_the_bare_shortfall_rule_but_not_the_shipped_one(fraud: World) -> None:
    tolerance = fraud.model.metric.tolerance
    bare = windows(fraud.model, fraud.holdout, fraud.stationary, T.min_labels, 100, seed=1, stderr=False)
    assert bare.old_rule(tolerance) > 0.05, "the case the standard error is for: 200 labels, ~6 frauds"
    stationary = windows(fraud.model, fraud.holdout, fraud.stationary, SIZE, COUNT, seed=2)
    assert stationary.new_rule(tolerance, T.live_metric_z, fraud.holdout_stderr) == 0.0


def test_the_shipped_rule_catches_the_regime_change(fraud: World) -> None:
    tolerance = fraud.model.metric.tolerance
    assert fraud.model.metric.gain(fraud.changed.auc(fraud.model), fraud.holdout) < -5 * tolerance
    changed = windows(fraud.model, fraud.holdout, fraud.changed, SIZE, COUNT, seed=3)
    assert 0 < fraud.holdout_stderr < 0.05
    assert changed.new_rule(tolerance, T.live_metric_z, fraud.holdout_stderr) >= (COUNT - 1) / COUNT
