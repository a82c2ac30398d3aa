"""A multiclass model on the real model server (KServe, Feast on Redis, MLflow): registered the way training
registers it, it answers V1 and V2 with per-class scores and the label, and its predicted classes are counted per
class where the canary reads them; a version whose answers are not probabilities never becomes ready, and the
server's exit says why. Only Redis and MLflow run: every request's entities are new, scored as without activity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier

from contract.registry import load
from contract.tasks import encode_target
from local.errors import EmbeddedError
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.server_metrics import scrape
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from local.traffic import TrafficGenerator
from pipelines.training.registration import evaluate_and_register
from serving.rollout.analysis import AnalysisConfig
from serving.rollout.rollout import CHAMPION, Rollout, RolloutConfig
from tests.local.broken_models import ShiftedClasses

pytestmark = pytest.mark.local

INSTANCE = {
    "courier_id": "courier-new",
    "restaurant_id": "restaurant-new",
    "zone_id": "zone-new",
    "order_id": "order-1",
    "distance_km": 14.0,
    "basket_value": 30.0,
}


class NotProbabilities:
    """Answers twice its classifier's probabilities: scores whose rows sum to 2, as a model returning raw scores
    instead of ``predict_proba`` would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = inner.classes_

    def predict_proba(self, x: Any) -> np.ndarray:
        return 2 * np.asarray(self.inner.predict_proba(x))


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    settings = EmbeddedSettings.on_free_ports(tmp_path_factory.mktemp("multiclass") / "state")
    services = EmbeddedServices(settings, ["redis", "mlflow"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    try:
        EmbeddedStreaming(services, load("delivery")).feature_store()  # the Feast repo the server reads
        mlflow.set_tracking_uri(settings.mlflow_url)
        mlflow.set_experiment("delivery")
        yield services
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    """Orders joined with their features, their outcome set by the distance."""
    rng = np.random.default_rng(seed)
    delivery = load("delivery")
    distance = rng.uniform(0.5, 20.0, n)
    frame = pd.DataFrame(
        {
            "courier_id": [f"courier-{i % 30}" for i in range(n)],
            "restaurant_id": [f"restaurant-{i % 20}" for i in range(n)],
            "zone_id": [f"zone-{i % 5}" for i in range(n)],
            "order_id": [f"order-{i}" for i in range(n)],
            "distance_km": distance,
            "basket_value": rng.uniform(5.0, 80.0, n),
        }
    )
    for ref in delivery.feature_refs():  # recent activity for some entities, none (NaN) for others
        frame[ref.replace(":", "__")] = np.where(rng.random(n) < 0.5, rng.gamma(2.0, 3.0, n), np.nan)
    frame[delivery.model.target] = np.select([distance < 6, distance < 13], ["on_time", "late"], "very_late")
    return frame


def _fitted(rows: pd.DataFrame) -> HistGradientBoostingClassifier:
    model = load("delivery").model
    classifier = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    return classifier.fit(model.prepare(rows), encode_target(model, rows[model.target]))


def test_a_multiclass_version_answers_per_class_scores_and_is_counted_per_class(services: EmbeddedServices) -> None:
    delivery = load("delivery")
    rows = _rows(600)
    experiment = mlflow.get_experiment_by_name("delivery")
    assert experiment is not None
    run = MlflowClient().create_run(experiment.experiment_id)
    decision = evaluate_and_register(
        delivery, _fitted(rows), rows, 0.0, services.settings.mlflow_url, run.info.run_id, {}
    )
    assert decision.passed and decision.version, decision.reason
    serving = EmbeddedServing(services, delivery)
    serving.serve(decision.version)
    try:
        v1 = requests.post(
            f"{serving.endpoint}/v1/models/delivery:predict", json={"instances": [INSTANCE]}, timeout=10
        ).json()
        classes = list(delivery.model.classes)
        assert v1["classes"] == classes and v1["model_version"] == decision.version
        (prediction,) = v1["predictions"]
        assert list(prediction["scores"]) == classes and sum(prediction["scores"].values()) == pytest.approx(1.0)
        assert prediction["label"] == max(prediction["scores"], key=prediction["scores"].get)

        inputs = [
            {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
            for k, v in INSTANCE.items()
        ]
        v2 = requests.post(f"{serving.endpoint}/v2/models/delivery/infer", json={"inputs": inputs}, timeout=10)
        scores, label = v2.json()["outputs"]
        assert (scores["name"], scores["datatype"], scores["shape"]) == ("scores", "FP64", [1, 3])
        assert scores["data"] == pytest.approx(list(prediction["scores"].values()))
        assert (label["name"], label["datatype"], label["shape"], label["data"]) == (
            "label",
            "BYTES",
            [1],
            [prediction["label"]],
        )

        slots = serving.slots()
        port = slots[slots["stable"]]["port"]
        counted = scrape(f"http://127.0.0.1:{port}/metrics", "delivery", decision.version)
        assert counted.classes == {c: (2.0 if c == prediction["label"] else 0.0) for c in classes}
        assert counted.predictions == {}, "a multiclass version exports no probability histogram"
    finally:
        serving.stop()


def test_a_version_whose_answers_are_not_probabilities_never_becomes_ready(services: EmbeddedServices) -> None:
    delivery = load("delivery")
    rows = _rows(300, seed=1)
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(
            NotProbabilities(_fitted(rows)),
            name="model",
            signature=mlflow.models.infer_signature(delivery.model.prepare(rows.head(3))),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    version = str(mlflow.register_model(logged.model_uri, "delivery").version)
    serving = EmbeddedServing(services, delivery)
    try:
        expected = (
            rf"delivery v{version} cannot answer a request.*OutputError: multiclass predict must return probabilities"
        )
        with pytest.raises(EmbeddedError, match=expected):
            serving.serve(version)
    finally:
        serving.stop()


def _register(services: EmbeddedServices, fitted: Any, rows: pd.DataFrame) -> str:
    """A new version of delivery holding ``fitted``, registered as training registers a tied challenger."""
    experiment = mlflow.get_experiment_by_name("delivery")
    assert experiment is not None
    run = MlflowClient().create_run(experiment.experiment_id)
    decision = evaluate_and_register(
        load("delivery"), fitted, rows, 0.0, services.settings.mlflow_url, run.info.run_id, {}, accept_ties=True
    )
    assert decision.passed and decision.version, decision.reason
    return decision.version


def _register_ungated(estimator: Any, like_version: str) -> str:
    """A version the gate would refuse (training never registers it; a canary must still catch one that gets
    through), logged with the registered version's signature."""
    info = mlflow.models.get_model_info(f"models:/delivery/{like_version}")
    experiment = MlflowClient().get_experiment_by_name("delivery")
    assert experiment is not None
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        logged = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=info.signature,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn="predict_proba",
        )
    return str(mlflow.register_model(logged.model_uri, "delivery").version)


def test_a_tied_multiclass_challenger_is_promoted_and_a_shifted_one_rolled_back(services: EmbeddedServices) -> None:
    """The canary judges predicted classes by their counts (chi-square with a minimum effect): a challenger
    retrained on other rows of the same world passes every step; one that answers mostly 'very_late' is rolled
    back on the shift, through the real servers and proxy."""
    client = MlflowClient(services.settings.mlflow_url)
    rows = _rows(800, seed=1)
    champion = _register(services, _fitted(rows), rows)
    client.set_registered_model_alias("delivery", CHAMPION, champion)
    serving = EmbeddedServing(services, load("delivery"))
    serving.serve(champion)
    traffic_rows = [
        {**INSTANCE, "order_id": f"order-{i}", "distance_km": float(d), "basket_value": 30.0}
        for i, d in enumerate(np.random.default_rng(5).uniform(0.5, 20.0, 400))
    ]
    config = RolloutConfig(schedule=(30, 100), analysis=AnalysisConfig(min_requests=40, latency_objective_s=1.0))
    url = f"{serving.endpoint}/v1/models/delivery:predict"
    try:
        tied = _register(services, _fitted(_rows(800, seed=2)), rows)
        with TrafficGenerator(url, traffic_rows, rate=25.0):
            rollout = Rollout(EmbeddedBackend(serving), client, config)
            rollout.start(tied)
            state = rollout.run(window_s=8.0, timeout_s=150)
        assert state["outcome"] == "promoted", state
        assert client.get_model_version_by_alias("delivery", CHAMPION).version == tied

        shifted = _register_ungated(ShiftedClasses(_fitted(rows)), like_version=tied)
        with TrafficGenerator(url, traffic_rows, rate=25.0):
            rollout = Rollout(EmbeddedBackend(serving), client, config)
            rollout.start(shifted)
            state = rollout.run(window_s=8.0, timeout_s=150)
        assert state["outcome"] == "rolled back", state
        assert "predicted classes shifted" in state["reason"], state["history"][-1]
        assert client.get_model_version_by_alias("delivery", CHAMPION).version == tied
    finally:
        serving.stop()
