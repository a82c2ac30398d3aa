"""The monitor job's pieces without engines: its topics, SQL text and Flink configuration, the embedded programs'
arguments and the cluster objects (the join itself runs on real Kafka and Flink in tests/local/test_monitor_job.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract.registry import load
from contract.streaming import topics
from infra.use_cases import monitoring as cluster
from infra.use_cases.manifests import Endpoints
from local import streaming as local_streaming
from local.monitor import EmbeddedMonitor
from monitoring import monitor_job, monitor_sql
from pipelines.streaming.job import flink_config

DELIVERY = load("delivery")
ENDPOINTS = Endpoints(
    kafka_bootstrap="mlstack-kafka-bootstrap.kafka.svc.cluster.local:9092",
    feast_db_host="db",
    feast_redis="redis:6379",
    mlflow_uri="http://mlflow.mlflow.svc.cluster.local:5000",
    s3_endpoint="http://mlflow-s3.mlflow.svc.cluster.local:8333",
    kfp_api="http://kfp",
)


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(json.dumps(DELIVERY.streaming.to_json_dict("delivery")))
    return spec


def test_a_component_with_feedback_has_the_monitors_topics() -> None:
    assert topics("delivery", labels=True) == {
        "events": "delivery.events",
        "features": "delivery.features",
        "dead_letter": "delivery.events.dlq",
        "predictions": "delivery.predictions",
        "labels": "delivery.labels",
        "scored": "delivery.scored",
        "predictions_dead_letter": "delivery.predictions.dlq",
    }
    assert not {"labels", "scored", "predictions_dead_letter"} & set(topics("delivery"))
    assert _spec()["topics"]["scored"] == "delivery.scored"


def test_the_join_is_bounded_by_the_label_delay_on_the_feedback_key() -> None:
    spec = _spec()
    insert = monitor_sql.scored_insert(spec)
    # [t - watermark, t + max_delay_s]: 5 s before, 4,200 s (70 minutes) after; an interval join on event time.
    assert "l.label_ts BETWEEN p.pred_ts - INTERVAL '5' SECOND(2)" in insert
    assert "AND p.pred_ts + INTERVAL '0 01:10:00' DAY TO SECOND" in insert
    assert "ON p.feedback_key = l.`key`" in insert
    assert "KEY 'prediction' VALUE JSON(p.prediction)" in insert, "the logged object passes through"
    checked = monitor_sql.checked_view(spec)
    assert "COALESCE(JSON_VALUE(payload, '$.entities.order_id'), JSON_VALUE(payload, '$.request.order_id'))" in checked
    assert "'missing feedback key order_id (in entities or request)'" in checked
    assert "WATERMARK FOR label_ts AS label_ts - INTERVAL '5' SECOND(2)" in monitor_sql.labels_source(spec, "b:1", "g")
    assert "`label` STRING" in monitor_sql.labels_source(spec, "b:1", "g"), "delivery's outcome is a string"
    sink = monitor_sql.scored_sink(spec, "b:1")
    assert "'topic' = 'delivery.scored'" in sink and "'key.fields' = 'request_id'" in sink
    assert "'topic' = 'delivery.predictions.dlq'" in monitor_sql.dead_letter_sink(spec, "b:1")
    assert monitor_sql._duration(90_061) == "INTERVAL '1 01:01:01' DAY TO SECOND"


def test_a_component_without_feedback_is_refused_by_name() -> None:
    spec = {**_spec(), "feedback": None}
    with pytest.raises(ValueError, match="component 'delivery' declares no feedback"):
        monitor_job.statements(spec, "b:1")
    without = dataclasses.replace(DELIVERY, streaming=dataclasses.replace(DELIVERY.streaming, feedback=None))
    assert not cluster.monitored(without) and cluster.monitored(DELIVERY)


def test_the_job_is_the_feature_jobs_template_under_its_own_name_and_group() -> None:
    args = argparse.Namespace(jars="j", parallelism=1, rest_port=1, checkpoint_interval_s=2, checkpoints="file:///c")
    config = monitor_job.monitor_config(args, _spec())
    assert config == {**flink_config(args, _spec()), "pipeline.name": "delivery-monitor"}
    tables, inserts = monitor_job.statements(_spec(), "b:1")
    assert all("'properties.group.id' = 'delivery-monitor'" in t for t in tables[:2])
    assert [i.split()[2] for i in inserts] == ["scored_out", "prediction_dead_letters"]


def test_the_job_imports_only_what_the_streaming_image_holds() -> None:
    """It runs in the streaming environment and image (contract, pipelines/streaming, the monitor's two modules)."""
    code = (
        "import sys; before = set(sys.modules); import monitoring.monitor_job; "
        "print('\\n'.join(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] not in sys.stdlib_module_names)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    modules = set(out.stdout.split())
    assert {m for m in modules if m.startswith("monitoring")} <= {"monitoring", "monitoring.monitor_sql"} | {
        "monitoring.monitor_job"
    }
    assert {m.split(".")[0] for m in modules} <= {"contract", "pipelines", "monitoring"}


def test_embedded_programs_and_their_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jars").mkdir()
    (tmp_path / "jars" / "connector.jar").write_text("")
    monkeypatch.setattr(local_streaming, "FLINK_JARS", tmp_path / "jars")
    monkeypatch.setattr(local_streaming, "FLINK_UDF_JARS", tmp_path / "none")
    settings = SimpleNamespace(
        state_dir=tmp_path / "state",
        kafka_bootstrap="127.0.0.1:19092",
        mlflow_url="http://127.0.0.1:15000",
        redis_address="r:1",
    )
    services: Any = SimpleNamespace(settings=settings, daemon=SimpleNamespace(stop=lambda program: None))
    streaming = local_streaming.EmbeddedStreaming(services, DELIVERY)
    monitor = streaming.monitor
    assert isinstance(monitor, EmbeddedMonitor)
    assert (monitor.job_program, monitor.exporter_program) == ("monitor-delivery", "monitor-exporter-delivery")
    root = tmp_path / "state" / "streaming" / "delivery"
    assert monitor.job_args(18082) == [
        *("--spec", f"{root}/spec.json", "--bootstrap", "127.0.0.1:19092"),
        *("--checkpoints", f"file://{root}/monitor/checkpoints", "--jars", f"file://{tmp_path}/jars/connector.jar"),
        *("--rest-port", "18082", "--parallelism", "1"),
    ]
    assert monitor.exporter_args(19464) == [
        *("--component", "delivery", "--bootstrap", "127.0.0.1:19092", "--tracking-uri", "http://127.0.0.1:15000"),
        *("--metrics-port", "19464", "--history", f"{tmp_path}/state/monitoring/history"),
    ]
    fraud_like = dataclasses.replace(DELIVERY, streaming=dataclasses.replace(DELIVERY.streaming, feedback=None))
    assert local_streaming.EmbeddedStreaming(services, fraud_like).monitor is None


def test_the_cluster_runs_the_monitor_beside_the_feature_job() -> None:
    flink = cluster.monitor_deployment(DELIVERY, "mlstack", "streaming:1", ENDPOINTS)
    assert flink["metadata"]["name"] == "delivery-monitor"
    args = flink["spec"]["job"]["args"]
    assert args[args.index("-py") + 1] == "/app/monitoring/monitor_job.py"
    assert args[args.index("--checkpoints") + 1] == "s3://mlstack-flink/delivery/monitor/checkpoints"
    configuration = flink["spec"]["flinkConfiguration"]
    assert configuration["high-availability.storageDir"] == "s3://mlstack-flink/delivery/monitor/ha"
    assert flink["spec"]["job"]["upgradeMode"] == "last-state" and flink["spec"]["job"]["parallelism"] == 1


def test_the_exporter_has_its_own_tokenless_account_and_is_scraped_from_prometheus_namespace() -> None:
    objects = cluster.exporter_objects(DELIVERY, "mlstack", "pipeline:1", ENDPOINTS, "monitoring")
    account, deployment = objects["monitor-exporter-account"], objects["monitor-exporter"]
    assert account["automountServiceAccountToken"] is False
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"] == "delivery-monitor-exporter"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9464",
        "prometheus.io/path": "/metrics",
    }
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "monitoring.exporter"]
    assert container["args"] == [
        *("--component", "delivery", "--bootstrap", ENDPOINTS.kafka_bootstrap, "--tracking-uri", ENDPOINTS.mlflow_uri),
        *("--metrics-port", "9464", "--history", "/data/history"),
    ]
    assert container["resources"]["limits"] and container["securityContext"]["readOnlyRootFilesystem"] is True
    policy = objects["monitor-exporter-scrape"]["spec"]
    assert policy["podSelector"]["matchLabels"] == pod["metadata"]["labels"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9464}]
    peers = policy["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}
    ]}} in peers  # fmt: skip
