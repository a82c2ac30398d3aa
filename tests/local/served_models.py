"""Models and online features for serving tests that need a served version of any component without streaming
or training it: valid request rows (entity keys over a few entities plus one never seen, request fields within
their domains), a classifier fitted on synthetic rows registered as training registers it, and a just-closed
window pushed to the online store for those entities."""

from __future__ import annotations

import uuid
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from contract import Component
from contract.tasks import classes as class_names
from pipelines.features.feast_repo import push_source_name

ENTITIES = 6
"""Entities per key with features in the store; requests also name one the store never saw (all NaN)."""


def request_rows(component: Component, n: int, seed: int) -> list[dict[str, Any]]:
    """Valid request rows: entity keys cycling over the stored entities plus one never seen, request fields within
    their domains (fields by name, as the components declare them)."""
    rng = np.random.default_rng(seed)
    schema = component.streaming.events
    kinds = {f.name: f for f in schema.fields}
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for key in component.entity_keys():
            row[key] = f"{key}-{i % (ENTITIES + 1)}"  # entity ENTITIES is never pushed
        for name in component.model.request_fields:
            if name in row:
                continue
            field = kinds[name]
            domain = field.domain
            if domain is not None and domain.values:
                row[name] = domain.values[i % len(domain.values)]
            elif field.type == "string":
                row[name] = f"{name}-{uuid.uuid4().hex[:8]}"  # an order id: unique per request
            else:
                low = domain.minimum if domain is not None and domain.minimum is not None else 0.0
                row[name] = round(float(low) + float(rng.uniform(1, 50)), 2)
        rows.append(row)
    return rows


def register(component: Component, seed: int) -> str:
    """A classifier fitted on synthetic rows (features present for some, NaN for others), logged and registered
    as training registers it (predict's shape, the prepared columns as signature)."""
    rng = np.random.default_rng(seed)
    model = component.model
    frame = pd.DataFrame(request_rows(component, 400, seed))
    for ref in component.feature_refs():
        frame[ref.replace(":", "__")] = np.where(rng.random(len(frame)) < 0.7, rng.gamma(2.0, 3.0, len(frame)), np.nan)
    x = model.prepare(frame)
    n_classes = len(class_names(model)) if model.task == "multiclass" else 2
    target = rng.integers(0, n_classes, len(frame))
    fitted = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, target)
    mlflow.set_experiment(component.name)
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(
            fitted,
            name="model",
            signature=mlflow.models.infer_signature(x.head(5)),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    return str(mlflow.register_model(logged.model_uri, component.name).version)


def push_features(component: Component, store: Any, seed: int) -> None:
    """A window that just closed, for the first ``ENTITIES`` entities of every group: fresh for the views' TTL."""
    from feast.data_source import PushMode

    rng = np.random.default_rng(seed)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    for group in component.streaming.groups:
        frame = pd.DataFrame({group.entity: [f"{group.entity}-{i}" for i in range(ENTITIES)], "window_end": now})
        for aggregate in group.aggregates:
            values = rng.integers(1, 30, ENTITIES) if aggregate.function == "count" else rng.gamma(2.0, 5.0, ENTITIES)
            frame[aggregate.feature_name] = values
        store.push(push_source_name(component, group), frame, to=PushMode.ONLINE)
