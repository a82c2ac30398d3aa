"""The streaming programs' launch, written once (``pipelines.streaming.launch``): the cluster's FlinkDeployment and
worker Deployments and embedded mode's supervised commands take their arguments from it, and every consumer of a
component's topics takes its group id from ``ConsumerGroups``. The expected lists are what both modes rendered
before the launch was shared: the objects and commands must not change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import local.streaming as local_streaming
from contract.registry import load
from pipelines.streaming.launch import ConsumerGroups
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

BOOTSTRAP = "mlstack-kafka-bootstrap.kafka.svc.cluster.local:9092"
JARS = (
    "file:///opt/flink/usrlib/flink-sql-connector-kafka-5.0.0-2.2.jar;file:///opt/flink/usrlib/streaming-udf-1.0.0.jar"
)


@pytest.fixture(scope="module")
def run() -> mocks.Run:
    return mocks.run({**stack_config("kind"), "components": json.dumps(["fraud", "demand@3"])})


def _container(run: mocks.Run, name: str) -> dict[str, Any]:
    container: dict[str, Any] = run.named(name).inputs["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("component", ["fraud", "demand"])
def test_cluster_programs_keep_their_arguments(run: mocks.Run, component: str) -> None:
    flink = run.named(f"{component}-flink").inputs["spec"]["job"]
    assert flink["args"] == [
        *("-pyclientexec", "/usr/local/bin/python", "-py", "/app/pipelines/streaming/job.py"),
        *("--spec", "/opt/mlstack/spec/spec.json", "--bootstrap", BOOTSTRAP),
        *("--checkpoints", f"s3://mlstack-flink/{component}/checkpoints", "--jars", JARS),
        *("--parallelism", "1", "--checkpoint-interval-s", "10"),
    ]
    pusher = _container(run, f"{component}-feature-pusher")
    assert pusher["command"] == ["python", "-m", "pipelines.streaming.feature_pusher"]
    assert pusher["args"] == [
        *("--component", component, "--bootstrap", BOOTSTRAP, "--repo", "/opt/mlstack/feast"),
        *("--offline-root", f"s3://mlstack-features/{component}"),
        *("--metrics-port", "9465", "--metrics-host", "0.0.0.0"),  # scraped by the cluster's Prometheus
    ]
    archive = _container(run, f"{component}-event-archive")
    assert archive["command"] == ["python", "-m", "pipelines.streaming.event_archive"]
    assert archive["args"] == [
        *("--component", component, "--bootstrap", BOOTSTRAP, "--offline-root", f"s3://mlstack-features/{component}")
    ]


def test_topics_are_registered_by_their_role(run: mocks.Run) -> None:
    """Each KafkaTopic's resource name carries the role it was built for, not one recovered from its name."""
    names = {r.name: r.inputs for r in run.of_type("kubernetes:kafka.strimzi.io/v1:KafkaTopic")}
    expected = {
        "fraud-topic-events": "fraud.events",
        "fraud-topic-features": "fraud.features",
        "fraud-topic-dead-letter": "fraud.events.dlq",
        "fraud-topic-predictions": "fraud.predictions",
    }
    if load("fraud").streaming.feedback is not None:  # its labels, and the monitor's output and dead letters
        expected |= {
            "fraud-topic-labels": "fraud.labels",
            "fraud-topic-scored": "fraud.scored",
            "fraud-topic-predictions-dead-letter": "fraud.predictions.dlq",
        }
    assert {n: i["spec"]["topicName"] for n, i in names.items() if n.startswith("fraud-")} == expected
    assert names["demand-topic-dead-letter"]["metadata"]["name"] == "demand-dead-letter"


def _embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: object = None
) -> local_streaming.EmbeddedStreaming:
    for folder, jar in (("flink", "flink-sql-connector-kafka-5.0.0-2.2.jar"), ("udf", "streaming-udf-1.0.0.jar")):
        (tmp_path / "jars" / folder).mkdir(parents=True)
        (tmp_path / "jars" / folder / jar).write_text("")
    monkeypatch.setattr(local_streaming, "FLINK_JARS", tmp_path / "jars" / "flink")
    monkeypatch.setattr(local_streaming, "FLINK_UDF_JARS", tmp_path / "jars" / "udf")
    settings = SimpleNamespace(state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:19092", redis_address="r:1")
    daemon = SimpleNamespace(stop=lambda program: None)
    services: Any = SimpleNamespace(settings=settings, daemon=daemon)
    return local_streaming.EmbeddedStreaming(services, load("fraud"), flush_every_s=3.0, parallelism=2)


def test_embedded_programs_keep_their_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launch = _embedded(tmp_path, monkeypatch).launch(rest_port=18081)
    state, feast = tmp_path / "state" / "streaming" / "fraud", tmp_path / "state" / "feast" / "fraud"
    jars = f"file://{tmp_path}/jars/flink/flink-sql-connector-kafka-5.0.0-2.2.jar;"
    jars += f"file://{tmp_path}/jars/udf/streaming-udf-1.0.0.jar"
    assert launch.job_args() == [
        *("--spec", f"{state}/spec.json", "--bootstrap", "127.0.0.1:19092"),
        *("--checkpoints", f"file://{state}/checkpoints", "--jars", jars, "--rest-port", "18081", "--parallelism", "2"),
    ]
    # The pusher's flags in the cluster's order (argparse reads them in any order; before, --repo came first).
    assert launch.pusher_args() == [
        *("--component", "fraud", "--bootstrap", "127.0.0.1:19092", "--repo", f"{feast}/repo"),
        *("--offline-root", f"{feast}/offline", "--flush-every-s", "3.0", "--stats", f"{state}/pusher-stats.json"),
    ]
    assert launch.archive_args() == [
        *("--component", "fraud", "--bootstrap", "127.0.0.1:19092", "--offline-root", f"{feast}/offline"),
        *("--flush-every-s", "3.0"),
    ]


def test_consumer_groups_of_a_component() -> None:
    groups = ConsumerGroups.of("fraud")
    assert groups.all() == ("fraud-features", "fraud-feast-pusher", "fraud-event-archive")


def test_workers_and_reset_use_the_components_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import confluent_kafka
    import confluent_kafka.admin

    from pipelines.streaming.event_archive import EventArchive
    from pipelines.streaming.feature_pusher import FeaturePusher

    configs: list[dict[str, Any]] = []

    class Consumer:
        def __init__(self, config: dict[str, Any]) -> None:
            configs.append(config)

        def subscribe(self, topics: list[str]) -> None:
            configs[-1]["topics"] = topics

    deleted: list[list[str]] = []

    class Admin:
        def __init__(self, config: dict[str, Any]) -> None:
            pass

        def list_topics(self, timeout: float) -> Any:
            return SimpleNamespace(topics={})

        def delete_consumer_groups(self, groups: list[str]) -> dict[str, Any]:
            deleted.append(groups)
            return {}

    monkeypatch.setattr(confluent_kafka, "Consumer", Consumer)
    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", Admin)
    component = load("fraud")
    FeaturePusher(component, None, "b:1", str(tmp_path))
    EventArchive(component, "b:1", str(tmp_path))
    groups = ConsumerGroups.of("fraud")
    assert [(c["group.id"], c["topics"]) for c in configs] == [
        (groups.pusher, ["fraud.features"]),
        (groups.archive, ["fraud.events"]),
    ]
    # Both commit by themselves, after writing what they read; a new group starts at the beginning.
    assert {(c["enable.auto.commit"], c["auto.offset.reset"], c["bootstrap.servers"]) for c in configs} == {
        (False, "earliest", "b:1")
    }
    _embedded(tmp_path, monkeypatch).reset(progress=lambda message: None)
    monitor = ["fraud-monitor"] if component.streaming.feedback is not None else []  # the monitor job's group
    assert deleted == [[*groups.all(), *monitor]]


def test_the_job_imports_only_the_standard_library_and_contract() -> None:
    """The job runs in the streaming environment (PyFlink only): what it imports must exist there."""
    code = (
        "import sys; before = set(sys.modules); import pipelines.streaming.job; "
        "print('\\n'.join(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] not in sys.stdlib_module_names)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert {m.split(".")[0] for m in out.stdout.split()} <= {"contract", "pipelines"}
