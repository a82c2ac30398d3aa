"""Serving and canary rollouts on real engines: KServe model servers reading Feast, behind HAProxy, with the
MLflow registry's aliases moving as the rollout decides."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import mlflow
import mlflow.sklearn
import pytest
import requests
from mlflow import MlflowClient

from contract.registry import load
from contract.served import fitted_model
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.server_metrics import scrape
from local.service_spec import free_port
from local.services import EmbeddedServices
from local.traffic import TrafficGenerator, instances
from serving.rollout.analysis import AnalysisConfig, Snapshot
from serving.rollout.cluster_backend import PrometheusReader
from serving.rollout.rollout import CHAMPION, Rollout, RolloutConfig
from tests.local import broken_models
from tests.local.conftest import Streamed, Trained

# A shorter schedule than the default (10 -> 25 -> 50 -> 100) keeps the test quick; the decisions are the same.
FAST = RolloutConfig(schedule=(20, 50, 100), analysis=AnalysisConfig(min_requests=30, latency_objective_s=1.0))
WINDOW_S = 8.0
RATE = 25.0


@pytest.fixture(scope="module")
def served(embedded: EmbeddedServices, fraud_streamed: Streamed, fraud_trained: Trained) -> Iterator[EmbeddedServing]:
    """The first trained version as champion, served behind the proxy. The Flink job is stopped: its features
    are in Feast, and on two cores its idle work would only add noise to the latencies the canary compares."""
    fraud_streamed.streaming.stop()
    client = MlflowClient(embedded.settings.mlflow_url)
    champion = fraud_trained.run.decision["version"]
    client.set_registered_model_alias("fraud", CHAMPION, champion)
    serving = EmbeddedServing(embedded, load("fraud"))
    serving.serve(champion)
    yield serving
    serving.stop()


def _rows(fraud_streamed: Streamed) -> list[dict[str, Any]]:
    return instances(load("fraud"), fraud_streamed.events[-2000:])


def _register(embedded: EmbeddedServices, estimator: Any, like_version: str) -> str:
    """A new registry version holding ``estimator``, with the champion's signature."""
    mlflow.set_tracking_uri(embedded.settings.mlflow_url)
    info = mlflow.models.get_model_info(f"models:/fraud/{like_version}")
    with mlflow.start_run(experiment_id=MlflowClient().get_experiment_by_name("fraud").experiment_id):
        logged = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=info.signature,
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            pyfunc_predict_fn="predict_proba",
        )
    return str(mlflow.register_model(logged.model_uri, "fraud").version)


def _champion_estimator(embedded: EmbeddedServices) -> Any:
    mlflow.set_tracking_uri(embedded.settings.mlflow_url)
    return fitted_model(mlflow.sklearn.load_model("models:/fraud@champion"))  # the estimator, not its wrapper


GOOD_ROW = {"card_id": "card-0001", "merchant_id": "m-001", "transaction_id": "t-1", "amount": 3.0, "channel": "pos"}


def _body(drop: str = "", **changes: Any) -> str:
    row = {**GOOD_ROW, **changes}
    row.pop(drop, None)
    return json.dumps({"instances": [row]})


BAD_REQUESTS: list[tuple[str, str, str]] = [
    ("malformed JSON", "{not json", "request"),
    ("NaN amount", _body().replace("3.0", "NaN"), "request format"),
    ("infinite amount", _body().replace("3.0", "1e999"), "infinity"),
    ("missing field", _body(drop="merchant_id"), "missing field merchant_id"),
    ("extra field", _body(pin=1234), "unknown field pin"),
    ("wrong type", _body(amount="3"), "amount must be a number"),
    ("boolean for a number", _body(amount=True), "amount must be a number"),
    ("empty key", _body(card_id=""), "card_id must be a non-empty string"),
    ("not a list", json.dumps({"instances": GOOD_ROW}), "non-empty list"),
    ("empty list", json.dumps({"instances": []}), "non-empty list"),
    ("no instances", json.dumps({"rows": []}), "instances"),
    ("oversized", json.dumps({"instances": [GOOD_ROW] * 1001}), "limit is 1000"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_naming_the_problem(served: EmbeddedServing, case: str, body: str, message: str) -> None:
    url = f"{served.endpoint}/v1/models/fraud:predict"
    reply = requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=10)
    assert 400 <= reply.status_code < 500, f"{case}: {reply.status_code} {reply.text}"
    assert message.lower() in reply.json()["error"].lower(), reply.text
    assert requests.post(url, json={"instances": [GOOD_ROW]}, timeout=10).status_code == 200, "still serving"


def test_an_entity_never_seen_is_scored_as_one_without_activity(served: EmbeddedServing) -> None:
    """No features in the online store: every feature NaN, as the training set has them for an entity without a
    window within a view's TTL (tests/local/test_parity.py), not a 400. Two such entities are the same to the
    model, in one request or in two."""
    url = f"{served.endpoint}/v1/models/fraud:predict"
    unseen = [{**GOOD_ROW, "card_id": f"card-never-{i}", "merchant_id": f"m-never-{i}"} for i in range(3)]
    reply = requests.post(url, json={"instances": unseen[:2]}, timeout=10)
    assert reply.status_code == 200, reply.text
    alone = requests.post(url, json={"instances": unseen[2:]}, timeout=10)
    assert alone.status_code == 200, alone.text
    scores = [*reply.json()["predictions"], *alone.json()["predictions"]]
    assert scores == pytest.approx([scores[0]] * 3) and 0.0 <= scores[0] <= 1.0


def test_v1_and_v2_give_the_same_score_and_metrics_count_it(served: EmbeddedServing, fraud_streamed: Streamed) -> None:
    row = _rows(fraud_streamed)[0]
    v1 = requests.post(f"{served.endpoint}/v1/models/fraud:predict", json={"instances": [row]}, timeout=10).json()
    inputs = [
        {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
        for k, v in row.items()
    ]
    v2 = requests.post(f"{served.endpoint}/v2/models/fraud/infer", json={"inputs": inputs}, timeout=10).json()
    assert v2["outputs"][0]["data"][0] == pytest.approx(v1["predictions"][0])
    assert 0.0 <= v1["predictions"][0] <= 1.0
    bad_v2 = requests.post(f"{served.endpoint}/v2/models/fraud/infer", json={"inputs": inputs[:1]}, timeout=10)
    assert bad_v2.status_code == 400 and "missing input" in bad_v2.json()["error"]
    slots = served.slots()
    metrics = requests.get(f"http://127.0.0.1:{slots[slots['stable']]['port']}/metrics", timeout=10).text
    assert 'mlstack_requests_total{component="fraud",version=' in metrics
    assert "mlstack_prediction_probability_bucket" in metrics and "mlstack_request_latency_seconds_bucket" in metrics


@pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus not found: apt-get install prometheus")
def test_prometheus_reads_what_the_servers_own_metrics_say(
    served: EmbeddedServing, fraud_streamed: Streamed, tmp_path: Any
) -> None:
    """The cluster's canary analysis reads each version's counters through a real Prometheus (Debian's) scraping
    the real model server: its queries must give exactly what embedded mode reads from the server itself."""
    slots = served.slots()
    stable = slots[slots["stable"]]
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: model-server, static_configs: [{{targets: ['127.0.0.1:{stable['port']}']}}]}}]\n"
    )
    argv = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    prometheus = subprocess.Popen(
        [*argv, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for row in _rows(fraud_streamed)[:20]:
            requests.post(f"{served.endpoint}/v1/models/fraud:predict", json={"instances": [row]}, timeout=10)
        own = scrape(f"http://127.0.0.1:{stable['port']}/metrics", "fraud", str(stable["version"]))
        reader, seen = PrometheusReader(f"http://127.0.0.1:{port}"), Snapshot()
        deadline = time.monotonic() + 60
        while seen != own and time.monotonic() < deadline:  # until a scrape after the last request is queryable
            time.sleep(1)
            try:
                seen = reader.snapshot("fraud", str(stable["version"]))
            except OSError:  # still starting
                continue
        assert own.requests >= 20 and own.latency and own.predictions, own
        assert seen == own, (seen, own)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


@pytest.mark.parametrize("broken", [broken_models.Raising, broken_models.Slow, broken_models.Shifted])
def test_a_broken_challenger_is_rolled_back_under_load(
    embedded: EmbeddedServices, served: EmbeddedServing, fraud_streamed: Streamed, broken: type
) -> None:
    client = MlflowClient(embedded.settings.mlflow_url)
    champion = served.slots()[served.slots()["stable"]]["version"]
    version = _register(embedded, broken(_champion_estimator(embedded)), champion)
    rollout = Rollout(EmbeddedBackend(served), client, FAST)
    with TrafficGenerator(f"{served.endpoint}/v1/models/fraud:predict", _rows(fraud_streamed), rate=RATE) as traffic:
        began = time.time()
        state = rollout.start(version)  # Raising never becomes ready (its warm-up fails): rolled back at once
        if not state["outcome"]:
            state = rollout.run(window_s=WINDOW_S, timeout_s=120)
        assert (broken is broken_models.Raising) == ("never became ready" in state["reason"]), state
        time.sleep(1.5)  # requests after the rollback land on stable only
        after = time.time()
        time.sleep(1.5)
    assert state["outcome"] == "rolled back", state
    assert state["history"][-1]["verdict"] == "fail"
    during = traffic.log.since(began)
    errors = [r for r in during if r.status >= 500 or r.status == 0]
    stable_slot = served.slots()["stable"]
    assert all(r.slot != stable_slot for r in errors), "the stable version served no errors"
    assert len(errors) <= 0.2 * len(during) + 5, (
        f"errors beyond the canary share: {traffic.log.by_slot(during)} {state}"
    )
    assert {r.slot for r in traffic.log.since(after)} == {stable_slot}
    assert client.get_model_version_by_alias("fraud", CHAMPION).version == champion
    assert client.get_model_version("fraud", version).tags["mlstack.rollout"].startswith("rolled back")


def test_a_good_challenger_is_stepped_to_100_and_promoted(
    embedded: EmbeddedServices, served: EmbeddedServing, fraud_streamed: Streamed
) -> None:
    client = MlflowClient(embedded.settings.mlflow_url)
    old = served.slots()[served.slots()["stable"]]["version"]
    version = _register(embedded, _champion_estimator(embedded), old)
    client.set_registered_model_alias("fraud", "challenger", version)
    rollout = Rollout(EmbeddedBackend(served), client, FAST)
    shares = []
    with TrafficGenerator(f"{served.endpoint}/v1/models/fraud:predict", _rows(fraud_streamed), rate=RATE) as traffic:
        rollout.start()  # the challenger alias
        state = rollout.run(window_s=WINDOW_S, timeout_s=180, on_step=lambda a: shares.append(served.weights()))
        time.sleep(1.5)
        after = time.time()
        time.sleep(1.5)
    assert state["outcome"] == "promoted", state
    assert [h["share"] for h in state["history"] if h["verdict"] == "pass"] == [20, 50, 100]
    assert client.get_model_version_by_alias("fraud", CHAMPION).version == version
    assert client.get_model_version("fraud", old).version == old, "the old version is kept for rollback"
    assert client.get_model_version("fraud", version).tags["mlstack.replaced_version"] == old
    new_slot = served.slots()["stable"]
    assert served.slots()[new_slot]["version"] == version
    assert {r.slot for r in traffic.log.since(after)} == {new_slot}
    assert all(r.status == 200 for r in traffic.log.responses), traffic.log.by_slot()
