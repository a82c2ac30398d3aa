"""The fraud model: a gradient-boosted classifier over the transaction itself and its card's and merchant's
recent activity, scored by ROC AUC."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from contract.model import EVENT_TIMESTAMP, IntRange, LogUniform, Metric, ModelSpec

TREES_PER_STAGE = 25
GROUPS = ("card_10m", "card_1h", "merchant_1h")


def examples(events: pd.DataFrame) -> pd.DataFrame:
    """One labelled row per transaction, looked up as of the moment it happened."""
    frame = events[["card_id", "merchant_id", "amount", "channel", "is_fraud"]].copy()
    frame[EVENT_TIMESTAMP] = pd.to_datetime(events["event_time"], unit="ms", utc=True)
    return frame


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The transaction's amount and channel, its card's and merchant's windows, and the amount against them."""
    # Columns first, one DataFrame at the end: inserting them one by one costs milliseconds per served request.
    x: dict[str, Any] = {
        "amount": frame["amount"].astype("float64"),
        "online": (frame["channel"] == "online").astype("float64"),
    }
    for group in GROUPS:
        # No window within the view's TTL means no activity: counts and sums are zero; averages stay unknown.
        x[f"{group}_count"] = frame[f"{group}__event_count"].astype("float64").fillna(0.0)
        x[f"{group}_sum"] = frame[f"{group}__amount_sum"].astype("float64").fillna(0.0)
        x[f"{group}_avg"] = frame[f"{group}__amount_avg"].astype("float64")
        x[f"{group}_max"] = frame[f"{group}__amount_max"].astype("float64")
    x["amount_vs_card_1h_avg"] = x["amount"] / x["card_1h_avg"]
    x["amount_vs_card_10m_max"] = x["amount"] / x["card_10m_max"]
    return pd.DataFrame(x, index=frame.index)


def fit(params: Mapping[str, Any], x: pd.DataFrame, y: np.ndarray, seed: int) -> Iterator[Any]:
    model = HistGradientBoostingClassifier(
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=float(params["l2_regularization"]),
        early_stopping=False,
        warm_start=True,  # each stage adds trees to the previous ones instead of starting over
        random_state=seed,
    )
    for stage in range(1, MODEL.max_stages + 1):
        model.set_params(max_iter=stage * TREES_PER_STAGE)
        model.fit(x, y)
        yield model


def predict(model: Any, x: pd.DataFrame) -> np.ndarray:
    """Probability that the transaction is fraud."""
    return np.asarray(model.predict_proba(x)[:, 1])


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(roc_auc_score(y_true, y_score))


MODEL = ModelSpec(
    task="classification",
    target="is_fraud",
    request_fields=("amount", "channel"),
    examples=examples,
    prepare=prepare,
    fit=fit,
    predict=predict,
    metric=Metric("roc_auc", "max", roc_auc),
    search_space={
        "learning_rate": LogUniform(0.02, 0.3),
        "max_leaf_nodes": IntRange(8, 63),
        "min_samples_leaf": IntRange(10, 80),
        "l2_regularization": LogUniform(1e-3, 1.0),
    },
    max_stages=8,
)
