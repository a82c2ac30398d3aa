"""A multiclass component for tests: fraud's events and features with a three-class target (the transaction's
amount band, which its amount predicts), whose ``predict`` is the classifier's ``predict_proba`` (rows x 3), and
rows joined the way the model server joins a request with its features."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.tree import DecisionTreeClassifier

from components.fraud.model import MODEL as FRAUD_MODEL
from contract import Component, Metric
from contract.registry import load
from contract.tasks import encode_target

CLASSES = ("small", "medium", "large")
TARGET = "band"


def predict(model: Any, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x.fillna(0.0)))


def cross_entropy(y_true: np.ndarray, y_predicted: np.ndarray) -> float:
    return float(log_loss(y_true, y_predicted, labels=list(range(len(CLASSES)))))


MODEL = dataclasses.replace(
    FRAUD_MODEL,
    task="multiclass",
    classes=CLASSES,
    target=TARGET,
    predict=predict,
    metric=Metric("log_loss", "min", cross_entropy, tolerance=0.01),
    baseline=None,
)


def component() -> Component:
    """Fraud's, predicting the band: the verdict that arrives later is not its label (no feedback)."""
    fraud = load("fraud")
    return dataclasses.replace(
        fraud, streaming=dataclasses.replace(fraud.streaming, feedback=None), model=MODEL
    ).validate()


def joined_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` requests joined with features (half of them without any recent window: NaN), with their band."""
    rng = np.random.default_rng(seed)
    fraud = load("fraud")
    amount = rng.lognormal(3.0, 1.0, n)
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{seed}-{i}" for i in range(n)],
            "card_id": [f"card-{i % 50:04d}" for i in range(n)],
            "merchant_id": [f"m-{i % 20:03d}" for i in range(n)],
            "amount": amount,
            "channel": rng.choice(["pos", "online"], n),
        }
    )
    for ref in fraud.feature_refs():
        values = rng.gamma(2.0, 20.0, n)
        values[rng.random(n) < 0.5] = np.nan
        frame[ref.replace(":", "__")] = values
    frame[TARGET] = np.select([amount < 15, amount < 40], ["small", "medium"], "large")
    return frame


def fitted(frame: pd.DataFrame) -> DecisionTreeClassifier:
    x = MODEL.prepare(frame).fillna(0.0)
    return DecisionTreeClassifier(max_depth=4, min_samples_leaf=5, random_state=0).fit(
        x, encode_target(MODEL, frame[TARGET])
    )
