"""The inference log records what was served: a real model server (KServe, Feast on Redis, MLflow) with its log on
a real Kafka answers V1 and V2 requests (one of several rows), and ``<component>.predictions`` then holds one record
per scored row, keyed by the request id, whose prediction, entities, request fields and features are those of the
answer, for a binary component (fraud) and a multiclass one whose feedback key is a request field (delivery).
Its own services (Kafka, Redis, MLflow), so no other test's state is touched."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import requests
from confluent_kafka import Consumer

from contract import Component
from contract.registry import load
from contract.streaming import topics
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from serving.online_features import OnlineFeatures
from tests.local.served_models import push_features, register, request_rows

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    settings = EmbeddedSettings.on_free_ports(tmp_path_factory.mktemp("inference-log") / "state")
    services = EmbeddedServices(settings, ["kafka", "redis", "mlflow"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    try:
        mlflow.set_tracking_uri(settings.mlflow_url)
        yield services
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def consume(bootstrap: str, topic: str, wanted: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The topic's records from its start, until ``wanted`` arrived (or the time-out: the test then names what is
    missing)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < wanted and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            record = json.loads(message.value())
            assert message.key().decode() == record["request_id"], "keyed by the request id"
            records.append(record)
    finally:
        consumer.close()
    return records


def predictions_of(component: Component, body: dict[str, Any], protocol: str) -> list[dict[str, Any]]:
    """A response's predictions in the log's terms (``{"score"}``, or ``{"scores", "label"}``)."""
    if protocol == "v1":
        if component.model.task == "multiclass":
            return [{"scores": p["scores"], "label": p["label"]} for p in body["predictions"]]
        return [{"score": p} for p in body["predictions"]]
    outputs = {o["name"]: o for o in body["outputs"]}
    if component.model.task == "multiclass":
        names = json.loads(outputs["scores"]["parameters"]["classes"])
        scores = np.asarray(outputs["scores"]["data"]).reshape(outputs["scores"]["shape"]).tolist()
        return [
            {"scores": dict(zip(names, row, strict=True)), "label": label}
            for row, label in zip(scores, outputs["label"]["data"], strict=True)
        ]
    return [{"score": s} for s in outputs["score"]["data"]]


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN features (JSON null) equal to each other and floats to within a rounding."""
    if a is None or b is None:
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    if isinstance(a, float) or isinstance(b, float):
        return bool(math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12))
    return bool(a == b)


@pytest.mark.parametrize("name", ["fraud", "delivery"])
def test_the_inference_log_records_what_was_served(services: EmbeddedServices, name: str) -> None:
    component = load(name)
    streaming = EmbeddedStreaming(services, component)
    store = streaming.feature_store()  # the Feast repo the server reads, applied
    version = register(component, seed=1)
    serving = EmbeddedServing(services, component)
    serving.serve(version)
    try:
        push_features(component, store, seed=2)
        rows = request_rows(component, 13, seed=3)
        sent: dict[str, tuple[list[int], list[dict[str, Any]]]] = {}  # request id -> (row indices, predictions)
        base = serving.endpoint
        for i, row in enumerate(rows):
            request_id = f"{name}-{i}-{uuid.uuid4().hex[:6]}"
            if i % 2 == 0:  # V1, the id in the header
                response = requests.post(
                    f"{base}/v1/models/{name}:predict",
                    json={"instances": [row]},
                    headers={"x-request-id": request_id},
                    timeout=10,
                )
                protocol = "v1"
            else:  # V2, the id in the body (echoed as the response's id)
                inputs = [
                    {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
                    for k, v in row.items()
                ]
                response = requests.post(
                    f"{base}/v2/models/{name}/infer", json={"id": request_id, "inputs": inputs}, timeout=10
                )
                protocol = "v2"
            assert response.status_code == 200, response.text
            body = response.json()
            if protocol == "v2":
                assert body["id"] == request_id
                assert body["parameters"]["degraded"] is False
            else:
                assert body["degraded"] is False
            sent[request_id] = ([i], predictions_of(component, body, protocol))
        # Several rows in one request: one record per row, the same key.
        many = request_rows(component, 3, seed=4)
        response = requests.post(f"{base}/v1/models/{name}:predict", json={"instances": many}, timeout=10)
        assert response.status_code == 200, response.text
        many_predictions = predictions_of(component, response.json(), "v1")
        expected_features = OnlineFeatures(component, store).lookup(pd.DataFrame(rows + many))

        records = consume(services.settings.kafka_bootstrap, topics(name)["predictions"], len(rows) + len(many))
        assert len(records) == len(rows) + len(many), f"{len(records)} records for {len(rows) + len(many)} rows"
        by_id: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_id.setdefault(record["request_id"], []).append(record)
        (many_id,) = set(by_id) - set(sent)  # the multi-row request got an id of the server's
        sent[many_id] = (list(range(len(rows), len(rows) + len(many))), many_predictions)
        assert set(by_id) == set(sent)
        feature_columns = [ref.replace(":", "__") for ref in component.feature_refs()]
        order = [*rows, *many]
        present = 0
        for request_id, (indices, predictions) in sent.items():
            logged = sorted(by_id[request_id], key=lambda r: r["row"])
            assert [r["row"] for r in logged] == list(range(len(indices)))
            for record, index, prediction in zip(logged, indices, predictions, strict=True):
                row = order[index]
                assert record["component"] == name and record["model_version"] == version
                assert record["degraded"] is False
                assert record["entities"] == {k: row[k] for k in component.entity_keys()}
                assert record["request"] == {k: v for k, v in row.items() if k not in component.entity_keys()}
                assert record["prediction"].keys() == prediction.keys()
                for key, value in prediction.items():
                    if isinstance(value, dict):
                        assert all(same(value[c], record["prediction"][key][c]) for c in value), (value, record)
                    else:
                        assert same(value, record["prediction"][key]), (value, record)
                served = expected_features.iloc[index]
                for column in feature_columns:
                    assert same(record["features"][column], float(served[column])), (column, record)
                present += sum(record["features"][c] is not None for c in feature_columns)
                assert abs(record["event_time"] / 1000 - time.time()) < 600
        if name == "delivery":  # the feedback key the monitor joins labels by is a request field, so it is logged
            feedback = component.streaming.feedback
            assert feedback is not None and all(feedback.key in r["request"] for r in records)
        assert present > 0, "some rows were served features from the store (not all NaN)"
    finally:
        serving.stop()
