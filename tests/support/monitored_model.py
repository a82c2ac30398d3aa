"""A component's model trained on generated events and registered the way the training pipeline registers it
(``pipelines.training.registration.evaluate_and_register``: the model as served, its holdout score and its reference
profile), without the pipeline's search: one fixed configuration, the features joined in pandas as of each example
(``tests.offline_quality.training_frame``, which the streaming tests hold equal to what the feature job computes)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from contract import Component
from contract.model import EVENT_TIMESTAMP, IntRange, LogUniform
from contract.tasks import encode_target
from pipelines.training.registration import evaluate_and_register
from tests.offline_quality import training_frame

HOLDOUT_SHARE = 0.2


def middle_params(component: Component) -> dict[str, Any]:
    """The middle of each search range (geometric for log-uniform ones): a plain, sound configuration."""
    params: dict[str, Any] = {}
    for name, space in component.model.search_space.items():
        if isinstance(space, LogUniform):
            params[name] = (space.low * space.high) ** 0.5
        elif isinstance(space, IntRange):
            params[name] = (space.low + space.high) // 2
        else:
            raise ValueError(f"component {component.name!r}: no middle for search space {name}={space!r}")
    return params


def train_and_register(component: Component, events: list[dict[str, Any]], mlflow_uri: str, warm_up_s: int) -> str:
    """Fit on the older examples of ``events`` after ``warm_up_s`` (until then the longest windows are still filling,
    so their features are not what a running stream serves), judge on the newest, register; returns the version."""
    import mlflow

    model = component.model
    frame = training_frame(component, events)
    first = pd.Timestamp(events[0][component.streaming.events.event_time] + warm_up_s * 1000, unit="ms", tz="UTC")
    frame = frame[frame[EVENT_TIMESTAMP] >= first].reset_index(drop=True)
    if len(frame) < 200:
        raise ValueError(f"{component.name}: {len(frame)} examples after the warm-up; generate more events")
    cut = int(len(frame) * (1 - HOLDOUT_SHARE))
    train, holdout = frame.iloc[:cut], frame.iloc[cut:]
    y = encode_target(model, train[model.target].to_numpy())
    *_, fitted = model.fit(middle_params(component), model.prepare(train), y, 0)
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment(component.name)
    with mlflow.start_run() as run:
        run_id = run.info.run_id
    decision = evaluate_and_register(component, fitted, holdout, 0.0, mlflow_uri, run_id, {}, training=train)
    if decision.version is None:
        raise ValueError(f"{component.name}: the model was not registered: {decision.reason}")
    return decision.version
