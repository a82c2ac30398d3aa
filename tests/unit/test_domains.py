"""Each domain's data carries the signal it promises, and its declarations hold together: checked offline with
the pandas reference of the streaming windows (the local tier checks the same through the real engines).
Each domain's events and labels are checked in its own test_component_<name>.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from contract.registry import load
from tests.offline_quality import holdout_quality

START_MS = 1_790_000_000_000 - 1_790_000_000_000 % 60_000


def test_fraud_reaches_a_roc_auc_above_0_85() -> None:
    fraud = load("fraud")
    events = list(fraud.generate(30_000, START_MS, 7))
    params = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 0.01}
    quality = holdout_quality(fraud, events, params)
    assert quality.score > 0.85, quality


@pytest.mark.parametrize("seed", [7, 11])
def test_demand_forecast_beats_the_naive_last_value_by_a_clear_margin(seed: int) -> None:
    demand = load("demand")
    events = list(demand.generate(20_000, START_MS, seed))
    params = {"learning_rate": 0.05, "max_leaf_nodes": 8, "min_samples_leaf": 100, "l2_regularization": 0.1}
    quality = holdout_quality(demand, events, params)
    assert quality.baseline is not None
    assert quality.score < 0.9 * quality.baseline, f"MAE {quality.score:.2f} vs last value {quality.baseline:.2f}"


def test_the_domains_cover_each_task_type() -> None:
    fraud, demand, delivery = load("fraud"), load("demand"), load("delivery")
    assert (fraud.model.task, fraud.model.metric.direction) == ("binary", "max")
    assert (demand.model.task, demand.model.metric.direction) == ("regression", "min")
    assert (delivery.model.task, delivery.model.metric.direction) == ("multiclass", "min")
    # Every domain's labels arrive as events of their own, some time after what they judge (their own tests).
    assert all(c.streaming.events.kinds and c.streaming.feedback is not None for c in (fraud, demand, delivery))


def test_fraud_prepare_reads_a_served_row_as_training_does() -> None:
    """A request row (JSON types, absent windows as None): counts and sums of no activity are 0, averages and
    maxima unknown, and the amount ratios follow; the columns are the training columns, in order."""
    from components.fraud.model import FEATURES, GROUPS, prepare

    row: dict[str, object] = {"amount": 120, "channel": "online"}
    for group in GROUPS:
        row |= {f"{group}__event_count": None, f"{group}__amount_sum": None}
        row |= {f"{group}__amount_avg": None, f"{group}__amount_max": None}
    row |= {"card_1h__event_count": 3, "card_1h__amount_sum": 120.0, "card_1h__amount_avg": 40.0}
    x = prepare(pd.DataFrame([row]))
    assert list(x.columns) == list(FEATURES) and (x.dtypes == "float64").all()
    first = x.iloc[0]
    assert first["amount"] == 120.0 and first["online"] == 1.0
    assert first["card_10m_count"] == 0.0 and first["merchant_1h_sum"] == 0.0
    assert math.isnan(first["card_10m_avg"]) and math.isnan(first["amount_vs_card_10m_max"])
    assert first["card_1h_count"] == 3.0 and first["amount_vs_card_1h_avg"] == 3.0
