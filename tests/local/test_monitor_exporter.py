"""The monitor exporter as a process on real engines: a fraud version registered in a real MLflow with its profile
and holdout score; inference-log records on ``fraud.predictions`` and labelled predictions in the monitor job's
format on ``fraud.scored`` (built here: the job's own end-to-end test joins real ones) on a real Kafka; the exporter
reading them, scraped by the embedded Prometheus, which evaluates the shipped rules (shortened ``for``) and notifies
Alertmanager and the receiver.

Required: the live metric on ``/metrics`` and in Prometheus equals sklearn's ROC AUC on the same records, and the
window's row and label counts are theirs; drift stays under the rule on rows drawn like the training rows and rises
on rows whose amounts the test multiplies, until ``FeatureDrift`` reaches the receiver; history rows are written;
a restarted exporter's first window is the same window, rebuilt from the topics."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import orjson
import pandas as pd
import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from mlflow import MlflowClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.dummy import DummyClassifier
from sklearn.metrics import roc_auc_score

from contract.profile import ARTIFACT_PATH, build_profile
from contract.registry import load
from local.alerting import write_targets
from local.paths import main_module
from local.service_spec import free_port
from local.services import EmbeddedServices
from local.settings import AlertingSettings, EmbeddedSettings
from monitoring import metrics as m
from monitoring.alert_routing import Routing
from monitoring.alert_rules import SHIPPED_THRESHOLDS as T
from monitoring.alert_rules import Thresholds, Timing
from pipelines.training.registration import holdout_stderr_name

pytestmark = pytest.mark.local

FAST = AlertingSettings(
    scrape_interval="1s",
    evaluation_interval="1s",
    rules=Timing(drift_for="3s", quality_for="3s", performance_for="3s"),
    thresholds=Thresholds(),
    routing=Routing(group_wait="1s", group_interval="1s", repeat_interval="1h"),
)
WINDOW_S, SLIDE_S = 120, 1
"""Long enough for the checks below to read a window holding every record of a phase."""
ROWS = 1500
HOLDOUT, HOLDOUT_STDERR = 0.83, 0.021
WAIT_S = 180
"""How long each state may take to show before the test fails (seconds on an idle machine)."""
FRAUD = load("fraud")
FEATURES = [ref.replace(":", "__") for ref in FRAUD.feature_refs()]


def transactions(n: int, seed: int, amount_factor: float = 1.0) -> pd.DataFrame:
    """Generated transactions with made-up raw features; ``amount_factor`` shifts amounts (and the scores)."""
    rows = pd.DataFrame(FRAUD.generate(3 * n, 1_764_000_000_000, seed))
    rows = rows[rows["kind"] == "transaction"].head(n).reset_index(drop=True)
    rows["amount"] = rows["amount"] * amount_factor
    rng = np.random.default_rng(seed)
    for name in FEATURES:
        rows[name] = np.where(rng.random(n) < 0.1, np.nan, rng.poisson(3, n).astype(float))
    return rows


def scores(rows: pd.DataFrame) -> np.ndarray:
    """A model's answers, rising with the amount."""
    return np.asarray(1 / (1 + np.exp(-(np.log(rows["amount"]) - 4.5))), dtype="float64")


@dataclass
class Monitor:
    services: EmbeddedServices
    version: str
    port: int
    history: Path
    log: Path
    command: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitor]:
    root = tmp_path_factory.mktemp("monitor-exporter")
    settings = replace(EmbeddedSettings.on_free_ports(root / "state"), alerting=FAST)
    services = EmbeddedServices(settings, ["kafka", "mlflow", "alerts", "alertmanager", "prometheus"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    try:
        version = register(settings.mlflow_url)
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for future in admin.create_topics(
            [NewTopic(t, num_partitions=2, replication_factor=1) for t in ("fraud.predictions", "fraud.scored")]
        ).values():
            future.result(30)
        del admin  # its client would keep reconnecting to the broker after the services stop
        port = free_port()
        history = root / "history"
        command = main_module(
            "monitoring.exporter",
            *("--component", "fraud", "--bootstrap", settings.kafka_bootstrap),
            *("--tracking-uri", settings.mlflow_url, "--metrics-port", str(port), "--history", str(history)),
            *("--window-s", str(WINDOW_S), "--slide-s", str(SLIDE_S)),
        )
        monitor = Monitor(services, version, port, history, root / "exporter.log", command)
        write_targets(settings, "monitoring", "monitor-fraud", [f"127.0.0.1:{port}"], {})
        monitor.start()
        yield monitor
        monitor.stop()
        print(monitor.log.read_text()[-5000:])
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def register(mlflow_url: str) -> str:
    """A fraud version as training registers it, for what the exporter reads: its profile and holdout score."""
    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("monitor-exporter")
    training = transactions(4000, seed=1)
    profile = build_profile(FRAUD, training, scores(transactions(1000, seed=2)))
    with mlflow.start_run() as run:
        mlflow.log_text(profile.to_json(), ARTIFACT_PATH)
        mlflow.log_metric("holdout_roc_auc", HOLDOUT)
        logged = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model")
    version = str(mlflow.register_model(logged.model_uri, "fraud", tags={"mlstack.run_id": run.info.run_id}).version)
    client = MlflowClient(mlflow_url)
    client.set_model_version_tag("fraud", version, "holdout_roc_auc", f"{HOLDOUT:.6f}")
    client.set_model_version_tag("fraud", version, holdout_stderr_name("roc_auc"), f"{HOLDOUT_STDERR:.6f}")
    return version


def produce(monitor: Monitor, rows: pd.DataFrame, seed: int, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row served now and labelled at once (Bernoulli of its score): its log record and its scored record.
    Returns the scores and labels."""
    producer = Producer({"bootstrap.servers": monitor.services.settings.kafka_bootstrap, "linger.ms": 20})
    output = scores(rows)
    labels = (np.random.default_rng(seed).random(len(rows)) < output).astype(int)
    for i, row in rows.iterrows():
        now = time.time_ns() // 1_000_000
        request_id = f"{phase}-{i}"
        clean = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        prediction = {"score": float(output[i])}
        served = {
            "request_id": request_id,
            "row": 0,
            "event_time": now,
            "component": "fraud",
            "model_version": monitor.version,
            "entities": {"card_id": clean["card_id"], "merchant_id": clean["merchant_id"]},
            "request": {"amount": clean["amount"], "channel": clean["channel"]},
            "features": {name: clean[name] for name in FEATURES},
            "prediction": prediction,
            "degraded": False,
        }
        scored = {
            "request_id": request_id,
            "row": 0,
            "model_version": monitor.version,
            "event_time": now,
            "label_time": now + 1,
            "key": clean["transaction_id"],
            "prediction": prediction,
            "label": int(labels[i]),
        }
        producer.produce("fraud.predictions", orjson.dumps(served), request_id.encode())
        producer.produce("fraud.scored", orjson.dumps(scored), request_id.encode())
        producer.poll(0)
    assert producer.flush(30) == 0, "every record delivered"
    return output, labels


def scrape(monitor: Monitor) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The exporter's /metrics: series name -> labels -> value ({} while it is not up)."""
    try:
        text = requests.get(f"http://127.0.0.1:{monitor.port}/metrics", timeout=5).text
    except requests.ConnectionError:
        return {}
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def model_value(exposed: dict[str, Any], series: m.Series, version: str, **labels: str) -> float | None:
    key = tuple(sorted({"component": "fraud", "version": version, **labels}.items()))
    value: float | None = exposed.get(series.name, {}).get(key)
    return value


def wait_for(monitor: Monitor, what: str, check: Any) -> dict[str, Any]:
    """Scrape until ``check(exposed)`` holds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        exposed = scrape(monitor)
        if exposed and check(exposed):
            return exposed
        if monitor.process is not None and monitor.process.poll() is not None:
            pytest.fail(f"the exporter exited ({monitor.process.returncode}): {monitor.log.read_text()[-3000:]}")
        assert time.monotonic() < deadline, f"{what} not within {WAIT_S}s; log: {monitor.log.read_text()[-3000:]}"
        time.sleep(0.5)


def drifted(exposed: dict[str, Any], version: str) -> list[str]:
    """Features for which the FeatureDrift rule's condition holds in this scrape."""
    out = []
    for key, psi in exposed.get(m.FEATURE_PSI.name, {}).items():
        labels = dict(key)
        if labels["version"] != version:
            continue
        p = model_value(exposed, m.FEATURE_DRIFT_PVALUE, version, feature=labels["feature"])
        if psi > T.drift_psi and p is not None and p < T.drift_pvalue:
            out.append(labels["feature"])
    return out


def query(monitor: Monitor, promql: str) -> list[dict[str, Any]]:
    url = f"{monitor.services.settings.prometheus_url}/api/v1/query"
    response = requests.get(url, params={"query": promql}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_the_exporter_publishes_the_live_metric_drift_and_history_and_drift_alerts(monitor: Monitor) -> None:
    v = monitor.version
    wait_for(monitor, "the exporter's /metrics", lambda e: m.METRIC_TOLERANCE.name in e)

    # Stationary: rows drawn like the training rows.
    stationary = transactions(ROWS, seed=3)
    output, labels = produce(monitor, stationary, seed=4, phase="stationary")
    full = wait_for(
        monitor,
        f"a window of all {ROWS} rows and labels",
        lambda e: (
            model_value(e, m.WINDOW_ROWS, v) == ROWS
            and model_value(e, m.LABELLED_PREDICTIONS, v, metric="roc_auc") == ROWS
        ),
    )
    reference = roc_auc_score(labels, output)
    assert model_value(full, m.LIVE_METRIC, v, metric="roc_auc") == pytest.approx(reference, abs=1e-12)
    assert model_value(full, m.HOLDOUT_METRIC, v, metric="roc_auc") == pytest.approx(HOLDOUT)
    assert model_value(full, m.HOLDOUT_METRIC_STDERR, v, metric="roc_auc") == pytest.approx(HOLDOUT_STDERR)
    assert model_value(full, m.METRIC_SHORTFALL, v, metric="roc_auc") == pytest.approx(HOLDOUT - reference)
    assert model_value(full, m.MEAN_PREDICTED, v) == pytest.approx(output.mean())
    assert model_value(full, m.MEAN_OBSERVED, v) == pytest.approx(labels.mean())
    assert model_value(full, m.FEATURE_PSI, v, feature="amount") is not None
    assert drifted(full, v) == [], "no feature drifts on rows drawn like the training rows"
    psi = model_value(full, m.PREDICTION_PSI, v)
    pvalue = model_value(full, m.PREDICTION_DRIFT_PVALUE, v)
    assert psi is not None and pvalue is not None and not (psi > T.drift_psi and pvalue < T.drift_pvalue)
    assert model_value(full, m.INCOMPLETE_ROWS, v, state="absent") == 0.0

    # Prometheus scrapes the same value.
    deadline = time.monotonic() + WAIT_S
    selector = f'{m.LIVE_METRIC.name}{{component="fraud",version="{v}"}}'
    while not query(monitor, selector):
        assert time.monotonic() < deadline, f"Prometheus never scraped the exporter: {query(monitor, 'up')}"
        time.sleep(0.5)
    assert float(query(monitor, selector)[0]["value"][1]) == pytest.approx(reference, abs=1e-12)

    # History: one row per version per slide, in the offline store.
    history = pd.read_parquet(monitor.history / "fraud")
    assert set(history["version"]) == {v} and (history["rows"] > 0).all()
    assert history["live_metric"].dropna().between(0, 1).all()

    # A restart reads the topics again from one window back, and publishes nothing before it has: its first window
    # is the same window.
    monitor.stop()
    monitor.start()
    rebuilt = wait_for(monitor, "the restarted exporter's first window", lambda e: model_value(e, m.WINDOW_ROWS, v))
    assert model_value(rebuilt, m.WINDOW_ROWS, v) == ROWS
    assert model_value(rebuilt, m.LABELLED_PREDICTIONS, v, metric="roc_auc") == ROWS
    assert model_value(rebuilt, m.LIVE_METRIC, v, metric="roc_auc") == pytest.approx(reference, abs=1e-12)
    receiver = monitor.services.settings.alerts_url
    assert requests.get(receiver, params={"alertname": "FeatureDrift"}, timeout=10).json() == []

    # Shifted: amounts five times larger (and the scores with them).
    produce(monitor, transactions(ROWS, seed=5, amount_factor=5.0), seed=6, phase="shifted")
    shifted = wait_for(monitor, "drift on the amount", lambda e: "amount" in drifted(e, v))
    rows, prediction_psi = model_value(shifted, m.WINDOW_ROWS, v), model_value(shifted, m.PREDICTION_PSI, v)
    assert rows is not None and rows >= ROWS
    assert prediction_psi is not None and prediction_psi > T.drift_psi
    deadline = time.monotonic() + WAIT_S
    alerts: list[dict[str, Any]] = []
    while not alerts:
        assert time.monotonic() < deadline, f"no FeatureDrift alert; Prometheus: {query(monitor, 'ALERTS')}"
        time.sleep(1)
        alerts = requests.get(receiver, params={"alertname": "FeatureDrift"}, timeout=10).json()
    labels_seen = {a["labels"]["feature"] for a in alerts}
    assert "amount" in labels_seen
    alert = next(a for a in alerts if a["labels"]["feature"] == "amount")
    assert alert["status"] == "firing"
    assert {k: alert["labels"][k] for k in ("component", "version", "reason", "severity")} == {
        "component": "fraud",
        "version": v,
        "reason": "drift",
        "severity": "warning",
    }
