"""The exporter measures drift on examples and independent observations, not on requests (``monitoring.windows``):
hand-made windows of demand (many orders per zone and minute reading one zone snapshot) and fraud (one request per
transaction), checked against counts written out by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from contract.drift import WindowCounts, compare, window_counts
from contract.profile import NumericProfile, Profile, numeric_profile
from contract.registry import load
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T
from monitoring.records import Served
from monitoring.stats import drift, version_stats
from monitoring.windows import PREDICTIONS, Panes, VersionWindows, feature_views

pytestmark = pytest.mark.unit

MINUTE = 60_000
START = 1_764_000_000_000  # a whole hour: the panes and the feature windows below start here
DEMAND_FEATURES = (
    "zone_5m__event_count",
    "zone_15m__event_count",
    "zone_15m__basket_value_avg",
    "zone_1h__event_count",
)


LEVELS = np.random.default_rng(0).lognormal(np.log(30), 0.5, 12)
"""Each zone's orders per five minutes: the zones differ far more than a zone's minutes do."""
BASKETS = np.random.default_rng(1).uniform(18, 45, 12)


def _demand_profile() -> Profile:
    """Training's spread: the 12 zones x 120 minutes, each minute around its zone's level."""
    rng = np.random.default_rng(2)
    minutes = np.repeat(LEVELS, 120) * rng.lognormal(0, 0.15, 12 * 120)
    columns = {
        "zone_5m__event_count": numeric_profile(np.round(minutes)),
        "zone_15m__event_count": numeric_profile(np.round(minutes * 3)),
        "zone_15m__basket_value_avg": numeric_profile(np.repeat(BASKETS, 120) * rng.lognormal(0, 0.05, 12 * 120)),
        "zone_1h__event_count": numeric_profile(np.round(minutes * 12)),
    }
    return Profile("demand", "regression", columns, numeric_profile(minutes), (), DEMAND_FEATURES)


def _order(i: int, zone: int, at: int, snapshot: dict[str, float], prediction: float) -> Served:
    """One order's forecast request for ``zone`` as the inference log records it: the zone, the forecast of the
    minute it falls in, and the zone's snapshot of features."""
    values: dict[str, Any] = {"zone_id": f"zone-{zone:02d}", "forecast_id": f"zone-{zone:02d}@{at // MINUTE}"}
    return Served((f"order-{i}", 0), "1", at, {**values, **snapshot}, prediction, None)


def _snapshot(level: float, basket: float = 30.0) -> dict[str, float]:
    return dict(zip(DEMAND_FEATURES, (level, 3 * level, basket, 12 * level), strict=True))


def test_demand_orders_of_one_zone_and_minute_are_one_example_and_its_snapshot_one_observation() -> None:
    demand = load("demand")
    windows = VersionWindows(Panes(10 * MINUTE, MINUTE), feature_views(demand))
    levels = {0: 20.0, 1: 31.0, 2: 44.0}
    orders = 0
    for minute in range(2):  # two minutes of 5 orders per zone, each zone's snapshot unchanged
        for zone, level in levels.items():
            for k in range(5):
                windows.add_served(_order(orders, zone, START + minute * MINUTE + 1000 * k, _snapshot(level), level))
                orders += 1
    profile = _demand_profile()
    window = windows.window("1", START + 10 * MINUTE, profile)

    assert window.rows == window.counts["zone_5m__event_count"].rows == 30  # quality: every request
    # One example per zone and minute (the forecast), as training has one row per zone and minute.
    assert {name: c.rows for name, c in window.examples.items()} == dict.fromkeys((*DEMAND_FEATURES, PREDICTIONS), 6)
    # Both minutes lie in one 5-minute, 15-minute and hour window of each zone: 3 observations per view.
    assert window.observations == dict.fromkeys(DEMAND_FEATURES, 3)

    stats = version_stats(demand.model, "1", window, profile, 2.0, 1)
    for name in DEMAND_FEATURES:
        reference = profile.columns[name]
        # The test gets the 3 zones once each: 6 examples at half weight, the size-aware parts see 3 draws.
        by_hand = window_counts(reference, [_snapshot(level)[name] for level in levels.values()])
        assert stats.columns[name].p_value == pytest.approx(compare(reference, by_hand).p_value)
        assert stats.columns[name].psi == pytest.approx(compare(reference, by_hand).psi)
        assert stats.columns[name].rows == 30  # quality shares stay per request
    # Predictions: as independent as the most independent input, here a feature view's 3 observations.
    by_hand = window_counts(profile.predictions, list(levels.values()))
    assert stats.predictions is not None
    assert stats.predictions.p_value == pytest.approx(compare(profile.predictions, by_hand).p_value)


def test_a_burst_of_orders_on_twelve_zone_snapshots_is_no_drift_though_rows_as_draws_would_be() -> None:
    """The defect: 600 orders on 12 zone snapshots, taken as 600 independent draws, drift from training's spread
    of the same zones; taken as 12 observations they do not."""
    demand = load("demand")
    profile = _demand_profile()
    windows = VersionWindows(Panes(10 * MINUTE, MINUTE), feature_views(demand))
    levels = np.round(LEVELS * np.random.default_rng(3).lognormal(0, 0.15, 12))  # the zones at one moment
    for i in range(600):
        zone = i % 12
        at = START + (i * 997) % (10 * MINUTE)
        snapshot = _snapshot(float(levels[zone]), float(BASKETS[zone]))
        windows.add_served(_order(i, zone, at, snapshot, float(levels[zone])))
    window = windows.window("1", START + 10 * MINUTE, profile)
    stats = version_stats(demand.model, "1", window, profile, 2.0, 1)

    as_rows = compare(profile.columns["zone_5m__event_count"], window.counts["zone_5m__event_count"])
    assert as_rows.drifted(T.drift_psi, T.drift_pvalue), "the hand-made burst must show the defect"
    # The window spans two of each zone's 5-minute windows, but each zone's value is one snapshot read again.
    assert window.observations == dict.fromkeys(DEMAND_FEATURES, 12)
    assert [name for name, d in stats.columns.items() if d.drifted(T.drift_psi, T.drift_pvalue)] == []
    assert stats.predictions is not None and not stats.predictions.drifted(T.drift_psi, T.drift_pvalue)


def test_fraud_transactions_stay_one_example_each_and_only_repeated_entities_weigh_less() -> None:
    """Fraud asks once per transaction and trains once per transaction: no row is merged (a merchant's snapshot
    keeps the weight of the transactions that read it), request fields keep every row, and a feature's draws are
    its entities' distinct windows."""
    fraud = load("fraud")
    windows = VersionWindows(Panes(10 * MINUTE, MINUTE), feature_views(fraud))
    features = {name: 1.0 for name in feature_views(fraud)}
    for i in range(40):
        values = {"card_id": f"card-{i}", "merchant_id": f"m-{i % 4}", "transaction_id": f"t{i}", "amount": 10.0 + i}
        windows.add_served(
            Served((f"r{i}", 0), "1", START + 1000 * i, {**values, "channel": "pos", **features}, 0.1, None)
        )
    profile = Profile(
        "fraud",
        "binary",
        {"amount": numeric_profile(np.arange(100.0)), **{n: numeric_profile(np.arange(5.0)) for n in features}},
        numeric_profile(np.linspace(0, 1, 50)),
        ("amount",),
        tuple(features),
    )
    window = windows.window("1", START + 10 * MINUTE, profile)
    assert window.examples["amount"] == window.counts["amount"] and window.examples["amount"].rows == 40
    assert window.observations["card_10m__event_count"] == 40  # every card once
    assert window.observations["merchant_1h__event_count"] == 4  # four merchants, one snapshot each
    assert "amount" not in window.observations  # a request field: every row a draw
    stats = version_stats(fraud.model, "1", window, profile, 0.9, 1)
    amount = profile.columns["amount"]
    assert isinstance(amount, NumericProfile)
    assert stats.columns["amount"].p_value == compare(amount, window.counts["amount"]).p_value
    assert stats.predictions is not None  # a prediction is as independent as the amount: all 40 rows
    assert stats.predictions.p_value == compare(profile.predictions, window.counts[PREDICTIONS]).p_value


def test_scaled_counts_give_the_test_the_deduplicated_size() -> None:
    reference = numeric_profile(np.arange(100.0))
    examples = WindowCounts(12, 0, {"0": 4, "9": 8})
    rows = WindowCounts(120, 0, {"0": 40, "9": 80})
    halved = drift(reference, rows, examples, 0.5)
    by_hand = compare(reference, WindowCounts(6, 0, {"0": 2, "9": 4}))
    assert (halved.psi, halved.p_value) == (pytest.approx(by_hand.psi), pytest.approx(by_hand.p_value))
    assert halved.rows == 120 and halved.null_rate == 0.0  # quality from every row
    whole = drift(reference, rows, examples, 1.0)
    assert whole.p_value == compare(reference, examples).p_value
