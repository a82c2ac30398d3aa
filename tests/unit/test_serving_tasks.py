"""The model server answers by task: one score per row for binary and regression, per-class scores and the label
for multiclass, on V1 and V2; every answer is checked against its task, and a version that cannot answer a request
through the whole response path fails ``load`` instead of reporting ready.

Models and the registry are real (scikit-learn, MLflow on SQLite). The feature lookup answers as it does for an
entity with no recent activity (request columns, every feature NaN): the store itself is tested in tests/local.
A version registered as training registers it has the signature and pyfunc flavour of what the server answers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from kserve import InferRequest
from mlflow import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier

from components.fraud.model import MODEL as FRAUD_MODEL
from contract import Component
from contract.registry import load
from contract.tasks import OutputError
from pipelines.training.registration import evaluate_and_register, holdout_stderr_name
from serving.request_schema import Columns
from serving.runtime import ComponentModel, ModelNotServable
from tests.support import multiclass


def _no_activity(component: Component) -> Any:
    def lookup(columns: Columns, now: Any = None) -> pd.DataFrame:
        rows = len(next(iter(columns.values())))
        features = {ref.replace(":", "__"): [np.nan] * rows for ref in component.feature_refs()}
        return pd.DataFrame({**columns, **features})

    return lookup


def _server(component: Component, estimator: Any = None, uri: str = "models:/none/1") -> ComponentModel:
    model = ComponentModel(component, uri, "7", store=None)
    model.features.lookup = _no_activity(component)  # type: ignore[method-assign]  # the no-activity answer
    model.estimator = estimator
    return model


def _v2(model: ComponentModel, output: np.ndarray) -> dict[str, Any]:
    request = InferRequest(model_name=model.name, infer_inputs=[], request_id="r1")
    body, _ = model.v2_response(output, request).to_rest()
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("name", ["fraud", "demand"])
def test_binary_and_regression_answer_one_score_per_row(name: str) -> None:
    model = _server(load(name))
    output = np.array([0.25, 0.75])
    assert model.v1_body(output) == {"predictions": [0.25, 0.75], "model_version": "7", "degraded": False}
    body = _v2(model, output)
    assert body["outputs"] == [{"name": "score", "shape": [2], "datatype": "FP64", "data": [0.25, 0.75]}]
    assert body["model_version"] == "7" and body["id"] == "r1"


def test_multiclass_answers_per_class_scores_and_the_label_on_v1_and_v2() -> None:
    component = multiclass.component()
    rows = multiclass.joined_rows(400)
    model = _server(component, multiclass.fitted(rows))
    request = rows.head(5)
    output = model.answer(request)
    assert output.shape == (5, 3)
    labels = [multiclass.CLASSES[i] for i in output.argmax(axis=1)]
    assert len(set(labels)) > 1, "the rows span several classes"

    v1 = model.v1_body(output)
    assert v1["classes"] == list(multiclass.CLASSES) and v1["model_version"] == "7"
    assert [p["label"] for p in v1["predictions"]] == labels
    for prediction, row in zip(v1["predictions"], output, strict=True):
        assert list(prediction["scores"]) == list(multiclass.CLASSES)
        assert list(prediction["scores"].values()) == pytest.approx(row.tolist())
    json.dumps(v1, allow_nan=False)

    scores, label = _v2(model, output)["outputs"]
    assert (scores["name"], scores["shape"], scores["datatype"]) == ("scores", [5, 3], "FP64")
    assert scores["data"] == pytest.approx(output.ravel().tolist())  # row-major
    assert json.loads(scores["parameters"]["classes"]) == list(multiclass.CLASSES)
    assert label == {"name": "label", "shape": [5], "datatype": "BYTES", "data": labels}


def test_an_answer_of_the_wrong_shape_is_an_error_naming_the_task_and_both_shapes() -> None:
    """The issue's case: a binary component whose predict returns class probabilities (rows x 3)."""
    rows = multiclass.joined_rows(200)
    binary = dataclasses.replace(load("fraud"), model=dataclasses.replace(FRAUD_MODEL, predict=multiclass.predict))
    model = _server(binary, multiclass.fitted(rows))
    with pytest.raises(OutputError, match=r"binary predict must return .* shape \(4,\); got shape \(4, 3\)"):
        model.answer(rows.head(4))


@pytest.fixture()
def tracking(tmp_path: Path) -> Iterator[str]:
    """A real MLflow tracking server's store (SQLite) with artifacts under ``tmp_path``, as the process' URI."""
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("tasks", artifact_location=str(tmp_path / "a")))
    yield uri
    mlflow.set_tracking_uri(previous)


def _registered(estimator: Any, x: pd.DataFrame) -> str:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=mlflow.models.infer_signature(x.head(3)),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    return f"models:/fraud/{mlflow.register_model(info.model_uri, 'fraud').version}"


def test_a_version_answering_in_the_wrong_shape_fails_load_and_is_never_ready(tracking: str) -> None:
    rows = multiclass.joined_rows(200)
    estimator = multiclass.fitted(rows)
    binary = dataclasses.replace(load("fraud"), model=dataclasses.replace(FRAUD_MODEL, predict=multiclass.predict))
    uri = _registered(estimator, FRAUD_MODEL.prepare(rows))
    model = _server(binary, uri=uri)
    with pytest.raises(ModelNotServable, match=r"fraud v7 cannot answer a request.*got shape \(1, 3\)"):
        model.load()
    assert not model.ready

    served = _server(multiclass.component(), uri=uri)  # the same model under its multiclass contract
    assert served.load() and served.ready


def _binary(rows: pd.DataFrame) -> tuple[Component, Any]:
    """Fraud's own model (predict: the positive class's probability) on the rows, target a large amount."""
    rows["is_fraud"] = (rows["band"] == "large").astype(int)
    x = FRAUD_MODEL.prepare(rows)
    return load("fraud"), HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, rows["is_fraud"])


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_registered_versions_signature_and_pyfunc_are_what_the_server_answers(tracking: str, task: str) -> None:
    rows = multiclass.joined_rows(400)
    if task == "multiclass":
        component, estimator = multiclass.component(), multiclass.fitted(rows)
    else:
        component, estimator = _binary(rows)
    client = MlflowClient(tracking)
    run = client.create_run(mlflow.get_experiment_by_name("tasks").experiment_id)
    decision = evaluate_and_register(component, estimator, rows, 0.0, tracking, run.info.run_id, {})
    assert decision.passed and decision.version, decision.reason
    # The first version of a model without a champion serves as champion; its holdout score's noise is kept
    # (0 here: these rows are separable, every resample scores 1).
    assert decision.alias == "champion" and "registered as champion" in decision.reason
    version = client.get_model_version_by_alias("fraud", "champion")
    assert str(version.version) == decision.version
    assert float(version.tags[holdout_stderr_name(component.model.metric.name)]) >= 0
    tie = client.create_run(run.info.experiment_id).info.run_id
    again = evaluate_and_register(component, estimator, rows, 0.0, tracking, tie, {}, accept_ties=True)
    assert again.alias == "challenger" and again.champion_version == decision.version, again.reason
    uri = f"models:/fraud/{decision.version}"

    outputs = mlflow.models.get_model_info(uri).signature.outputs.to_dict()
    served = _server(component, uri=uri)
    assert served.load()
    request = rows.head(3)
    answer = served.answer(request)
    v2 = _v2(served, answer)["outputs"]
    assert {o["type"] for o in outputs} == {"double"} and {o["datatype"] for o in v2 if o["name"] != "label"} == {
        "FP64"
    }
    if task == "multiclass":
        names = [o["name"] for o in outputs]
        assert names == served.v1_body(answer)["classes"] == json.loads(v2[0]["parameters"]["classes"])
        assert v2[0]["shape"] == [3, len(outputs)]
    else:
        assert [o["name"] for o in outputs] == [v2[0]["name"]] == ["score"] and v2[0]["shape"] == [3]

    pyfunc = mlflow.pyfunc.load_model(uri).predict(component.model.prepare(request))
    assert np.asarray(pyfunc) == pytest.approx(answer)
    if task == "multiclass":
        assert list(pyfunc.columns) == list(multiclass.CLASSES)


def test_a_model_answering_in_the_wrong_shape_is_not_logged(tracking: str) -> None:
    rows = multiclass.joined_rows(200)
    binary = dataclasses.replace(load("fraud"), model=dataclasses.replace(FRAUD_MODEL, predict=multiclass.predict))
    rows["is_fraud"] = 0
    client = MlflowClient(tracking)
    run = client.create_run(mlflow.get_experiment_by_name("tasks").experiment_id)
    with pytest.raises(OutputError, match=r"component 'fraud': .* no version is logged: binary predict must return"):
        evaluate_and_register(binary, multiclass.fitted(rows), rows, 0.0, tracking, run.info.run_id, {})
    assert client.search_model_versions("name='fraud'") == []
    assert not client.list_artifacts(run.info.run_id)
