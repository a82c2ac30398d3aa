"""The demand model: each zone's orders in the next five minutes, from its order counts over the last 5, 15 and
60 minutes, by gradient-boosted trees with a Poisson loss (counts), scored by mean absolute error against the
naive forecast "the next five minutes repeat the last five"."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_absolute_error

from components.demand.events import HORIZON_S
from contract.model import EVENT_TIMESTAMP, IntRange, LogUniform, Metric, ModelSpec

TARGET = "orders_next_5m"
FORECAST_ID = "forecast_id"
WARM_UP_S = 900  # no example before the first quarter of an hour: its windows are still filling
TREES_PER_STAGE = 20
SCALE = "scale"
VIEWS = (("zone_5m", 5), ("zone_15m", 15), ("zone_1h", 60))
RELATIVE = [f"{view}_vs_scale" for view, _ in VIEWS]
STEP_S = 60  # one example per zone and minute, at the boundaries where windows close


def examples(events: pd.DataFrame) -> pd.DataFrame:
    """Per zone and minute boundary ``t`` of the orders' span: the forecast of ``[t, t + 5 min)`` from windows
    that closed by ``t``, named by its ``forecast_id``. No count: it arrives as the slot's ``actual`` five minutes
    later, and the training set joins it by ``forecast_id`` as known by its cutoff (``StreamingSpec.feedback``)."""
    if "kind" not in events:
        raise ValueError("demand events carry a 'kind' field (order, actual); these events have none")
    orders = events[events["kind"] == "order"]
    if orders.empty:
        return pd.DataFrame(columns=["zone_id", FORECAST_ID, EVENT_TIMESTAMP])
    times = orders["event_time"].to_numpy(dtype="int64")
    first = (times.min() // (STEP_S * 1000) + 1) * STEP_S * 1000 + WARM_UP_S * 1000
    grid = np.arange(first, times.max() + 1, STEP_S * 1000, dtype="int64")
    zones = np.sort(orders["zone_id"].unique())
    frame = pd.DataFrame({"zone_id": np.repeat(zones, len(grid)), "at": np.tile(grid, len(zones))})
    starts = pd.to_datetime(frame.pop("at"), unit="ms", utc=True)
    # forecast_id(zone, t) for the whole grid at once: the generator names its actuals the same way.
    frame[FORECAST_ID] = frame["zone_id"] + "@" + starts.dt.strftime("%Y-%m-%dT%H:%MZ")
    frame[EVENT_TIMESTAMP] = starts
    return frame


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts per window (no window within the TTL means no orders) as rates per minute, and each against the
    zone's recent level: a short-term rate above the hour's says demand is climbing."""
    x: dict[str, Any] = {}  # columns first, one DataFrame at the end (cheaper per served request)
    for view, minutes in VIEWS:
        x[f"{view}_per_min"] = frame[f"{view}__event_count"].astype("float64").fillna(0.0) / minutes
    x["basket_15m_avg"] = frame["zone_15m__basket_value_avg"].astype("float64")
    # The zone's recent level, smoothed over two windows: what LevelRelativeRegressor predicts relative to.
    x[SCALE] = HORIZON_S / 60 * (x["zone_15m_per_min"] + x["zone_1h_per_min"]) / 2 + 1.0
    for view, _ in VIEWS:
        x[f"{view}_vs_scale"] = x[f"{view}_per_min"] * (HORIZON_S / 60) / x[SCALE]
    return pd.DataFrame(x, index=frame.index)


class LevelRelativeRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints: its bases are Any
    """Gradient-boosted trees that learn the next five minutes relative to the zone's recent level.

    Trees cannot extrapolate to a level they have not seen (a zone busier than any in training), so they see
    only how the windows compare with the zone's scale and predict a ratio; ``predict`` multiplies the scale
    back. Rows are weighted by scale so the loss still counts orders, not ratios. One estimator, so MLflow's
    pyfunc, the champion's rescoring and the model server all call the same ``predict``.
    """

    def __init__(self, trees: HistGradientBoostingRegressor) -> None:
        self.trees = trees

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> LevelRelativeRegressor:
        self.trees.fit(x[RELATIVE], np.asarray(y) / x[SCALE], sample_weight=x[SCALE])
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.trees.predict(x[RELATIVE]) * x[SCALE], dtype="float64")


def fit(params: Mapping[str, Any], x: pd.DataFrame, y: np.ndarray, seed: int) -> Iterator[Any]:
    trees = HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=float(params["l2_regularization"]),
        early_stopping=False,
        warm_start=True,  # each stage adds trees to the previous ones instead of starting over
        random_state=seed,
    )
    model = LevelRelativeRegressor(trees)
    for stage in range(1, MODEL.max_stages + 1):
        trees.set_params(max_iter=stage * TREES_PER_STAGE)
        model.fit(x, y)
        yield model


def predict(model: Any, x: pd.DataFrame) -> np.ndarray:
    """Expected orders in the next five minutes."""
    return np.asarray(model.predict(x), dtype="float64")


def last_value(frame: pd.DataFrame) -> np.ndarray:
    """The naive forecast: the next five minutes bring as many orders as the last five did."""
    return np.asarray(frame["zone_5m__event_count"].astype("float64").fillna(0.0), dtype="float64")


def mae(y_true: np.ndarray, y_predicted: np.ndarray) -> float:
    return float(mean_absolute_error(y_true, y_predicted))


MODEL = ModelSpec(
    task="regression",
    target=TARGET,
    # Besides the zone, the forecast's id (the zone and the minute it starts at), so that served forecasts can be
    # joined to the actual count that arrives later; the model does not read it: the rest is in online features.
    request_fields=(FORECAST_ID,),
    examples=examples,
    prepare=prepare,
    fit=fit,
    predict=predict,
    # A few hundred zone-minutes in the holdout: MAE differences under 0.3 orders are its noise.
    metric=Metric("mae", "min", mae, tolerance=0.3),
    search_space={
        "learning_rate": LogUniform(0.03, 0.3),
        "max_leaf_nodes": IntRange(4, 31),
        "min_samples_leaf": IntRange(20, 120),
        "l2_regularization": LogUniform(1e-3, 1.0),
    },
    max_stages=8,
    baseline=last_value,
)
