"""Each domain's data carries the signal it promises, and its declarations hold together: checked offline with
the pandas reference of the streaming windows (the local tier checks the same through the real engines).
Delivery's own checks are in test_component_delivery.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from contract.model import EVENT_TIMESTAMP
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


def test_demand_examples_count_the_orders_of_the_next_five_minutes() -> None:
    demand = load("demand")
    minute = 60_000
    # zone-00: an order every 10 s for 30 minutes; zone-01: only in minutes 20 to 22.
    times = [START_MS + i * 10_000 for i in range(180)]
    events = [{"zone_id": "zone-00", "event_time": t} for t in times]
    events += [{"zone_id": "zone-01", "event_time": START_MS + 20 * minute + i * 1000} for i in range(120)]
    rows = demand.model.examples(pd.DataFrame(events))
    at = rows[EVENT_TIMESTAMP].astype("int64") // 1_000_000
    first = START_MS + 16 * minute  # the first whole minute after the quarter-hour warm-up
    assert at.min() == first
    steady = rows[rows["zone_id"] == "zone-00"]
    assert set(steady["orders_next_5m"]) == {30.0}, "six orders a minute over five minutes"
    burst = rows[(rows["zone_id"] == "zone-01")].set_index(at[rows["zone_id"] == "zone-01"])["orders_next_5m"]
    assert burst[START_MS + 16 * minute] == 60.0  # [16, 21) holds minute 20's 60 orders
    assert burst[START_MS + 20 * minute] == 120.0
    assert burst[START_MS + 22 * minute] == 0.0
    assert (at <= START_MS + 30 * minute - 5 * minute).all(), "no example whose next five minutes are unseen"


def test_the_domains_cover_each_task_type() -> None:
    fraud, demand, delivery = load("fraud"), load("demand"), load("delivery")
    assert (fraud.model.task, fraud.model.metric.direction) == ("binary", "max")
    assert (demand.model.task, demand.model.metric.direction) == ("regression", "min")
    assert (delivery.model.task, delivery.model.metric.direction) == ("multiclass", "min")
    assert demand.entity_keys() == ["zone_id"] and demand.model.request_fields == ()
    # The multiclass domain also has two event kinds and labels arriving as their own events.
    assert delivery.streaming.events.kinds and delivery.streaming.feedback is not None


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
