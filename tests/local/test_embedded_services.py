"""The embedded service runtime on real engines: lifecycle, Kafka round trip and restart, MLflow over REST,
and the errors a user meets (port taken, no Java, corrupt or stale state)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import mlflow
import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from local.errors import EmbeddedError
from local.paths import REPO_ROOT
from local.services import SERVICE_BUILDERS, EmbeddedServices
from local.supervisor_daemon import MARKER, SupervisorDaemon
from tests.conftest import isolated_settings, settings_env


def _marked(state_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(MARKER) == str(state_dir):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_services_start_clean_report_healthy_and_stop_without_leftovers(tmp_path: Path) -> None:
    services = EmbeddedServices(isolated_settings(tmp_path / "state"))
    rows = services.up(progress=print)
    try:
        assert {row.name: row.healthy for row in rows} == dict.fromkeys(SERVICE_BUILDERS, True)
        assert all(row.pid and row.rss_mb > 1 for row in rows)
        assert len(_marked(services.settings.state_dir)) >= 3
        # A second `up` finds everything running and changes nothing.
        again = services.up(progress=print)
        assert [row.pid for row in again] == [row.pid for row in rows]
        # The CLI reports the same set as healthy.
        status = _cli(["services", "status"], settings_env(services.settings))
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("healthy") == len(SERVICE_BUILDERS)
    finally:
        stopped = services.down(progress=print)
    assert stopped >= len(SERVICE_BUILDERS)
    assert _marked(services.settings.state_dir) == []
    assert all(not psutil.pid_exists(row.pid) for row in rows if row.pid)
    assert [row.state for row in services.status()] == ["STOPPED"] * len(SERVICE_BUILDERS)


def test_message_round_trip_and_topic_survives_broker_restart(embedded: EmbeddedServices) -> None:
    bootstrap = embedded.settings.kafka_bootstrap
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, b"before-restart").get(timeout=30)
    producer.close()

    embedded.restart("kafka", progress=print)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, b"after-restart").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=15000
    )
    values = [message.value for message in consumer]
    consumer.close()
    assert values == [b"before-restart", b"after-restart"]


def test_mlflow_run_is_readable_through_the_rest_api(embedded: EmbeddedServices) -> None:
    url = embedded.settings.mlflow_url
    client = mlflow.MlflowClient(tracking_uri=url)
    experiment_id = client.create_experiment(f"services-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "learning_rate", "0.1")
    client.log_metric(run.info.run_id, "auc", 0.93)
    client.set_terminated(run.info.run_id)

    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/runs/get?run_id={run.info.run_id}", timeout=10) as resp:
        body = json.load(resp)["run"]
    assert body["info"]["status"] == "FINISHED"
    assert {"key": "learning_rate", "value": "0.1"} in body["data"]["params"]
    assert [m["value"] for m in body["data"]["metrics"] if m["key"] == "auc"] == [0.93]


def test_port_in_use_is_a_one_line_error_and_starts_nothing(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.redis_port))
        squatter.listen()
        services = EmbeddedServices(settings)
        with pytest.raises(EmbeddedError, match=f"port {settings.redis_port} for redis is in use by pid {os.getpid()}"):
            services.up(progress=print)
    assert _marked(settings.state_dir) == []
    assert not services.daemon.running()


def test_missing_java_is_a_one_line_error(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    env = {
        "MLSTACK_STATE_DIR": str(settings.state_dir),
        "JAVA_HOME": str(tmp_path / "no-java-here"),
        "MLSTACK_KAFKA_PORT": str(settings.kafka_port),
    }
    result = _cli(["services", "up", "--only", "kafka"], env)
    assert result.returncode == 1
    assert "Java 17+ is required" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert _marked(settings.state_dir) == []


def test_corrupt_kafka_state_is_named(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    data = settings.state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_bytes(b"\x00\xffgarbage")
    env = {
        "MLSTACK_STATE_DIR": str(settings.state_dir),
        "MLSTACK_KAFKA_PORT": str(settings.kafka_port),
        "MLSTACK_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
    }
    result = _cli(["services", "up", "--only", "kafka"], env)
    assert result.returncode == 1
    assert "is corrupt" in result.stderr and "make services-reset" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert _marked(settings.state_dir) == []


def test_leftovers_of_a_killed_supervisor_are_reaped_on_next_up(tmp_path: Path) -> None:
    services = EmbeddedServices(isolated_settings(tmp_path / "state"), ["redis"])
    services.up(progress=print)
    daemon_pid = services.daemon.pid()
    assert daemon_pid
    orphan = services.status()[0].pid
    os.kill(daemon_pid, signal.SIGKILL)
    psutil.Process(daemon_pid).wait(10) if psutil.pid_exists(daemon_pid) else None
    assert orphan and psutil.pid_exists(orphan)  # redis outlived its supervisor: stale state

    lines: list[str] = []
    try:
        rows = services.up(progress=lines.append)
        assert rows[0].healthy and rows[0].pid != orphan
        assert any("leftover" in line for line in lines)
        assert not psutil.pid_exists(orphan)
    finally:
        services.down(progress=print)
    assert _marked(services.settings.state_dir) == []


def test_ctrl_c_during_up_leaves_nothing_behind(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    env = settings_env(settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "services", "up"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A terminal delivers Ctrl-C; a CI job started in the background may have SIGINT ignored, which the
        # child would inherit. Restore the default so the child behaves as under a person's terminal.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:  # interrupt once the services are starting, before MLflow is ready
            if "mlflow: starting" in line:
                break
        time.sleep(1)
        daemon_pid = SupervisorDaemon(settings.state_dir).pid()
        assert daemon_pid, "services should be starting"
        started = [psutil.Process(daemon_pid), *psutil.Process(daemon_pid).children(recursive=True)]
        assert len(started) >= 4  # supervisord, kafka, redis, mlflow
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
        assert process.returncode != 0
        assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
        assert _marked(settings.state_dir) == []
        assert not SupervisorDaemon(settings.state_dir).running()
    finally:
        # Whatever happened above, this test must not leave services running.
        process.kill()
        EmbeddedServices(settings).down(progress=print)
