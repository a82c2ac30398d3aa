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
    """One row per transaction, looked up as of the moment it happened. No verdict: it arrives with the
    transaction's resolution, and the training set joins it by ``transaction_id`` as known by its cutoff
    (``StreamingSpec.feedback``)."""
    if "kind" not in events:
        raise ValueError("fraud events carry a 'kind' field (transaction, resolution); these events have none")
    transactions = events[events["kind"] == "transaction"]
    frame = transactions[["transaction_id", "card_id", "merchant_id", "amount", "channel"]].copy()
    frame[EVENT_TIMESTAMP] = pd.to_datetime(transactions["event_time"], unit="ms", utc=True)
    return frame.reset_index(drop=True)


WINDOW_AGGREGATES = ("event_count", "amount_sum", "amount_avg", "amount_max")
FEATURES = (
    "amount",
    "online",
    *(f"{group}_{short}" for group in GROUPS for short in ("count", "sum", "avg", "max")),
    "amount_vs_card_1h_avg",
    "amount_vs_card_10m_max",
)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The transaction's amount and channel, its card's and merchant's windows, and the amount against them."""
    # One float matrix in, one out: a served request is one row, where each pandas column operation (astype,
    # fillna, division) costs tens of microseconds and together they cost more than the model.
    windows = frame[[f"{group}__{name}" for group in GROUPS for name in WINDOW_AGGREGATES]]
    w = windows.to_numpy(dtype="float64", na_value=np.nan).reshape(len(frame), len(GROUPS), len(WINDOW_AGGREGATES))
    # No window within the view's TTL means no activity: counts and sums are zero; averages stay unknown.
    w[:, :, :2] = np.nan_to_num(w[:, :, :2], nan=0.0)
    amount = frame["amount"].to_numpy(dtype="float64", na_value=np.nan)
    online = (frame["channel"].to_numpy() == "online").astype("float64")
    card_10m_max, card_1h_avg = w[:, GROUPS.index("card_10m"), 3], w[:, GROUPS.index("card_1h"), 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.column_stack([amount / card_1h_avg, amount / card_10m_max])
    x = np.column_stack([amount, online, w.reshape(len(frame), -1), ratios])
    return pd.DataFrame(x, columns=list(FEATURES), index=frame.index)


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
    task="binary",
    target="is_fraud",
    # The transaction id is sent so that served scores can be joined to the resolution that arrives later; the
    # model does not read it.
    request_fields=("transaction_id", "amount", "channel"),
    examples=examples,
    prepare=prepare,
    fit=fit,
    predict=predict,
    # A ~4,000-row holdout with ~200 frauds: ROC AUC differences under 0.02 are its noise.
    metric=Metric("roc_auc", "max", roc_auc, tolerance=0.02),
    search_space={
        "learning_rate": LogUniform(0.02, 0.3),
        "max_leaf_nodes": IntRange(8, 63),
        "min_samples_leaf": IntRange(10, 80),
        "l2_regularization": LogUniform(1e-3, 1.0),
    },
    max_stages=8,
)
