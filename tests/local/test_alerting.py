"""The alert path of embedded mode, end to end on real engines: a real model server, discovered by Prometheus from
its target file, starts failing; Prometheus evaluates the shipped serving rule (shortened times) and notifies
Alertmanager, which posts to the project's receiver, which records the alert and answers it on ``/alerts``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pytest
import requests

from contract.registry import load
from local.alerting import alerts_log, targets_dir
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import AlertingSettings, EmbeddedSettings
from local.streaming import EmbeddedStreaming
from monitoring.alert_routing import Routing
from monitoring.alert_rules import Thresholds, Timing
from tests.local import broken_models

pytestmark = pytest.mark.local

# Seconds instead of minutes: the shipped thresholds and rules, on a 20 s window sustained for 3 s.
FAST = AlertingSettings(
    scrape_interval="1s",
    evaluation_interval="1s",
    rules=Timing(window="20s", serving_for="3s"),
    thresholds=Thresholds(),
    routing=Routing(group_wait="1s", group_interval="1s", repeat_interval="1h"),
)
ROW = {"card_id": "card-0001", "merchant_id": "m-001", "transaction_id": "t-1", "amount": 3.0, "channel": "pos"}
WAIT_S = 180
"""How long the alert may take to arrive before the test fails (it takes a few tens of seconds)."""


@dataclass
class Served:
    services: EmbeddedServices
    serving: EmbeddedServing
    version: str
    flag: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Only what a model server needs (Redis with the fraud feature repo, MLflow) and the alert path; the model
    scores without features being streamed: every card is a new card, which is scored as one with no activity."""
    root = tmp_path_factory.mktemp("alerting")
    settings = replace(EmbeddedSettings.on_free_ports(root / "state"), alerting=FAST)
    services = EmbeddedServices(settings, ["redis", "mlflow", "alerts", "alertmanager", "prometheus"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    fraud = load("fraud")
    try:
        EmbeddedStreaming(services, fraud).feature_store()  # writes and applies the Feast repo the server reads
        flag = root / "broken"
        mlflow.set_tracking_uri(settings.mlflow_url)
        mlflow.set_experiment("alerting")
        with mlflow.start_run():
            logged = mlflow.sklearn.log_model(
                broken_models.FailsWhenFlagged(str(flag)),
                name="model",
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pyfunc_predict_fn="predict_proba",
            )
        version = str(mlflow.register_model(logged.model_uri, "fraud").version)
        serving = EmbeddedServing(services, fraud)
        serving.serve(version, progress=print)
        yield Served(services, serving, version, flag)
        serving.stop()
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def _predict(session: requests.Session, endpoint: str) -> int:
    response = session.post(f"{endpoint}/v1/models/fraud:predict", json={"instances": [ROW]}, timeout=10)
    return response.status_code


def _query(settings: EmbeddedSettings, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"{settings.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_a_failing_model_server_alerts_through_prometheus_and_alertmanager_to_the_receiver(served: Served) -> None:
    settings, session = served.services.settings, requests.Session()
    endpoint = served.serving.endpoint
    assert _predict(session, endpoint) == 200

    # Prometheus found the server through the target file model_serving wrote, and reads its series.
    deadline = time.monotonic() + WAIT_S
    selector = f'mlstack_requests_total{{component="fraud",version="{served.version}"}}'
    while not _query(settings, selector):
        assert time.monotonic() < deadline, f"Prometheus never scraped the server: {_query(settings, 'up')}"
        _predict(session, endpoint)
        time.sleep(0.5)
    assert requests.get(settings.alerts_url, timeout=10).json() == [], "nothing alerts while the server is healthy"

    served.flag.touch()
    alerts: list[dict[str, Any]] = []
    statuses: set[int] = set()
    while not alerts:
        assert time.monotonic() < deadline, (
            f"no alert within {WAIT_S}s; Prometheus alerts: {_query(settings, 'ALERTS')}; statuses seen {statuses}"
        )
        for _ in range(10):
            statuses.add(_predict(session, endpoint))
            time.sleep(0.05)
        alerts = requests.get(settings.alerts_url, params={"alertname": "ServingErrorRateHigh"}, timeout=10).json()
    assert statuses == {500}, "every request after the flag is a server error"

    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "ServingErrorRateHigh",
        "component": "fraud",
        "version": served.version,
        "reason": "serving",
        "severity": "critical",
    }
    summary = alert["annotations"]["summary"]  # the share includes the healthy requests still in the window
    assert summary.startswith(f"fraud v{served.version}: ") and summary.endswith(
        "% of requests fail with server errors"
    )
    assert alert["generatorURL"].startswith(settings.prometheus_url)
    # The same record is in the receiver's log under the state folder.
    assert '"ServingErrorRateHigh"' in alerts_log(settings).read_text()


def test_a_stopped_server_leaves_no_scrape_target(served: Served) -> None:
    settings = served.services.settings
    assert sorted(p.name for p in targets_dir(settings, "serving").iterdir()) == ["serve-fraud-a.json"]
    served.serving.stop_server("a")
    assert list(targets_dir(settings, "serving").iterdir()) == []
