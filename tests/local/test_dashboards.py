"""The dashboards' and alert rules' PromQL against the real embedded Prometheus scraping real servers: the fraud stream
(Kafka -> Flink -> the Feast pusher, whose /metrics serves freshness, topic records and consumer lag) and a fraud
model server answering good and bad requests, both discovered from their target files and scraped every second.

The stream starts the monitor job and exporter (``local/monitor.py``); the served version is registered with a
training profile, so the exporter publishes drift and quality for the rows it serves.

Required: every panel query and every alert rule evaluates without error; the queries over the series this session
exports (streaming, serving, the prediction distribution, drift and incomplete rows) return results carrying the
labels their legends show, for the served version; every rule loaded by Prometheus evaluates healthy; ``mlstack
monitor report`` writes a PNG and ``mlstack monitor status`` prints the panels. The live metric, calibration and
labelled-count panels need 200 labelled predictions, which no request here gets: they evaluate without error, and
their series names are checked against ``monitoring.metrics`` in the unit tier (``tests/unit/test_dashboards.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pytest
import requests

import serving.metrics
from contract.profile import ARTIFACT_PATH, build_profile
from contract.registry import load
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import AlertingSettings, EmbeddedSettings
from local.synthetic_stream import Streamed, stream_backlog
from monitoring.alert_rules import rules
from monitoring.dashboards import Dashboard, Panel, Query, dashboards
from tests.conftest import settings_env
from tests.local import broken_models
from tests.local.served_models import request_rows
from tests.local.test_monitor_exporter import scores, transactions

pytestmark = pytest.mark.local

FAST = AlertingSettings(scrape_interval="1s", evaluation_interval="1s")
EVENTS = 3_000
WAIT_S = 300
"""How long every required series may take to show (the monitor exporter publishes once a minute)."""
RATE = "1m"
BAD = {"no_such_field": 1}  # a 400, counted as a 'bad request' error
REQUIRED = {
    ("streaming", "Events in and window results out"): ("events/s", "window results/s"),
    ("streaming", "Consumer lag"): ("",),
    ("streaming", "Dead letters"): ("total", "new"),
    ("streaming", "Feature freshness (window close -> online store)"): ("p50", "p99"),
    ("serving", "Requests per version"): ("",),
    ("serving", "Errors per version"): ("",),
    ("serving", "Latency per version"): ("p50", "p99"),
    ("serving", "Inference log"): ("written",),
    ("model", "Prediction distribution"): ("p10", "p50", "p90"),
    ("model", "Feature drift (PSI)"): ("",),
    ("model", "Prediction drift (PSI)"): ("",),
    ("model", "Rows served with incomplete features"): ("",),
}
"""Panels -> the queries (by legend prefix) that must return results: those over series this session exports (the
monitor exporter's drift and quality from the served rows; the live metric, calibration and labelled count wait for
200 labels, which no request here gets). (The prediction quantiles of the estimate histogram share prefixes with the
probability's; one of them answers.)"""


@dataclass
class Session:
    services: EmbeddedServices
    streamed: Streamed
    serving: EmbeddedServing
    version: str


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("dashboards")
    settings = replace(EmbeddedSettings.on_free_ports(root / "state"), alerting=FAST)
    services = EmbeddedServices(settings)
    services.up(progress=lambda line: print(f"[services] {line}"))
    fraud = load("fraud")
    try:
        streamed = stream_backlog(services, "fraud", EVENTS, progress=print)
        mlflow.set_tracking_uri(settings.mlflow_url)
        mlflow.set_experiment("dashboards")
        # Registered as training registers a version: with its profile and holdout score, which the monitor
        # exporter (started with the stream) reads to publish drift and quality for the rows this version serves.
        profile = build_profile(fraud, transactions(2000, seed=1), scores(transactions(500, seed=2)))
        with mlflow.start_run() as run:
            mlflow.log_text(profile.to_json(), ARTIFACT_PATH)
            mlflow.log_metric("holdout_roc_auc", 0.83)
            logged = mlflow.sklearn.log_model(
                broken_models.FailsWhenFlagged(str(root / "never")),
                name="model",
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pyfunc_predict_fn="predict_proba",
            )
        tags = {"mlstack.run_id": run.info.run_id}
        version = str(mlflow.register_model(logged.model_uri, "fraud", tags=tags).version)
        serving_ = EmbeddedServing(services, fraud)
        serving_.serve(version, progress=print)
        yield Session(services, streamed, serving_, version)
        serving_.stop()
        streamed.streaming.stop()
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def _query(settings: EmbeddedSettings, promql: str) -> list[dict[str, Any]]:
    response = requests.get(f"{settings.prometheus_url}/api/v1/query", params={"query": promql}, timeout=30)
    body = response.json()
    assert body["status"] == "success", (promql, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _traffic(session: Session, seconds: float) -> None:
    http = requests.Session()
    endpoint = f"{session.serving.endpoint}/v1/models/fraud:predict"
    good = request_rows(load("fraud"), 20, seed=1)
    until, i = time.monotonic() + seconds, 0
    while time.monotonic() < until:
        answer = http.post(endpoint, json={"instances": [good[i % len(good)]]}, timeout=10)
        assert answer.status_code == 200, answer.text
        i += 1
        assert http.post(endpoint, json={"instances": [BAD]}, timeout=10).status_code == 400
        time.sleep(0.1)


def _panels() -> list[tuple[Dashboard, Panel, Query]]:
    return [(b, p, q) for b in dashboards(serving.metrics) for p in b.panels for q in p.queries]


def _missing(settings: EmbeddedSettings) -> list[str]:
    missing = []
    for board, panel, query in _panels():
        wanted = REQUIRED.get((board.key, panel.title))
        if wanted is not None and query.prefix in wanted and not _query(settings, query.promql("fraud", RATE)):
            if panel.title == "Prediction distribution" and "estimate" in query.expr:
                continue  # a binary classifier exports the probability histogram only
            missing.append(f"{board.key}/{panel.title}/{query.prefix or query.legend}")
    return missing


def test_every_panel_query_evaluates_and_the_exported_ones_carry_their_labels(session: Session) -> None:
    settings = session.services.settings
    deadline = time.monotonic() + WAIT_S
    while missing := _missing(settings):  # each needs two scrapes inside the rate range
        assert time.monotonic() < deadline, f"no results within {WAIT_S}s for {missing}"
        _traffic(session, 3)

    answered = 0
    for board, panel, query in _panels():
        result = _query(settings, query.promql("fraud", RATE))  # asserts Prometheus accepted it
        for series in result:
            labels = series["metric"]
            assert all(labels.get(label) for label in query.legend), (board.key, panel.title, labels)
            if "version" in query.legend:
                assert labels["version"] == session.version, labels
        answered += bool(result)
    assert answered >= sum(len(v) for v in REQUIRED.values())

    def labels_of(title: str, board: str) -> list[dict[str, str]]:
        (panel,) = [p for b in dashboards(serving.metrics) if b.key == board for p in b.panels if p.title == title]
        return [s["metric"] for q in panel.queries for s in _query(settings, q.promql("fraud", RATE))]

    assert {s["consumer"] for s in labels_of("Consumer lag", "streaming")} == {"job", "pusher", "archive"}
    groups = {g.name for g in load("fraud").streaming.groups}
    assert {s["group"] for s in labels_of("Feature freshness (window close -> online store)", "streaming")} == groups
    kinds = {s["kind"] for s in labels_of("Errors per version", "serving")}  # the server starts both at zero
    assert serving.metrics.BAD_REQUEST in kinds <= {serving.metrics.BAD_REQUEST, serving.metrics.SERVER_ERROR}


def test_the_stream_counts_match_kafka(session: Session) -> None:
    """The pusher's topic series are Kafka's offsets: every event produced, no dead letter, nothing left to read."""
    settings = session.services.settings
    status = session.streamed.streaming.status()
    events = _query(settings, 'mlstack_stream_topic_records_total{component="fraud", topic="events"}')
    assert [float(s["value"][1]) for s in events] == [float(status.events_in_topic)]
    dead = _query(settings, 'mlstack_stream_topic_records_total{component="fraud", topic="dead_letter"}')
    assert [float(s["value"][1]) for s in dead] == [float(status.dead_letters)]
    pusher = _query(settings, 'mlstack_stream_consumer_lag{component="fraud", consumer="pusher"}')
    assert [float(s["value"][1]) for s in pusher] == [0.0]


def test_every_alert_rule_evaluates_healthy(session: Session) -> None:
    settings = session.services.settings
    shipped = [r for group in rules(serving.metrics)["groups"] for r in group["rules"]]
    for rule in shipped:
        _query(settings, rule["expr"])  # asserts Prometheus accepted it
    deadline = time.monotonic() + WAIT_S
    while True:
        response = requests.get(f"{settings.prometheus_url}/api/v1/rules", timeout=30).json()
        loaded = {r["name"]: r for g in response["data"]["groups"] for r in g["rules"]}
        if all(r.get("lastEvaluation", "").startswith("20") for r in loaded.values()):
            break
        assert time.monotonic() < deadline, "Prometheus never evaluated every rule"
        time.sleep(1)
    assert sorted(loaded) == sorted(r["alert"] for r in shipped)
    unhealthy = {name: r.get("lastError") for name, r in loaded.items() if r["health"] != "ok"}
    assert unhealthy == {}


def test_the_cli_draws_the_report_and_prints_the_status(session: Session, tmp_path: Path) -> None:
    env = {**os.environ, **settings_env(session.services.settings)}
    png = tmp_path / "fraud.png"
    report = subprocess.run(
        [sys.executable, "-m", "cli", "monitor", "report", "fraud", "--out", str(png), "--since", "10m"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    assert f"wrote {png}" in report.stdout

    status = subprocess.run(
        [sys.executable, "-m", "cli", "monitor", "status", "fraud"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "250"},
        timeout=300,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    for board in dashboards(serving.metrics):
        for panel in board.panels:
            assert panel.title in status.stdout, panel.title
    assert f"p99 {session.version}" in status.stdout
