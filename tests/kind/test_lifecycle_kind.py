"""The kind tier, whole product: ``pulumi up`` of the kind stack with the ``fraud`` component through the Automation
API (the program builds the project's images and loads them into kind), then the lifecycle on the cluster:

events produced to ``fraud.events`` -> the FlinkDeployment's window results -> online features in Feast ->
the training pipeline run through the KFP API (twice: a champion, then a challenger) -> the InferenceService
serving the champion -> ``kubectl canary`` start / status / promote against the real InferenceService ->
``pulumi up`` changing nothing after the promotion -> a second canary rolled back, the split pinned until the
reverted revision is ready (``tests.kind.canary_checks``) -> ``pulumi destroy``.

Needs Docker, kind, kubectl and the Pulumi CLI; skips in one line naming what is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli import stack as deploy
from infra import images
from infra.cluster import preflight
from infra.use_cases import manifests
from local.service_spec import free_port
from tests.kind import canary_checks
from tests.kind.kind_stack import kind_stack

COMPONENT = "fraud"
NAMESPACE = "mlstack"
TIMEOUT_S = 1800


def _missing() -> str | None:
    if deploy.pulumi_cli() is None:
        return "pulumi CLI not found: install it (https://www.pulumi.com/docs/install/) or run `make tools`"
    if shutil.which("kubectl") is None:
        return "kubectl not found: install kubectl (https://kubernetes.io/docs/tasks/tools/)"
    return preflight.kind_cli() or preflight.docker()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A throw-away kind stack with the fraud component; destroyed and removed afterwards."""
    with kind_stack(tmp_path_factory, "lifecycle", {"components": json.dumps([COMPONENT])}) as stack:
        yield stack


@pytest.fixture(scope="module")
def cluster(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``pulumi up``; the kubeconfig and API clients of the new cluster."""
    from kubernetes import client, config

    result = stack.up(on_output=print)
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(result.outputs["kubeconfig"].value)
    config.load_kube_config(str(kubeconfig))
    return {
        "outputs": {k: v.value for k, v in result.outputs.items()},
        "kubeconfig": kubeconfig,
        "core": client.CoreV1Api(),
        "batch": client.BatchV1Api(),
        "custom": client.CustomObjectsApi(),
    }


def _wait(what: str, check: Any, timeout_s: float = TIMEOUT_S, every_s: float = 10) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@contextlib.contextmanager
def _port_forward(kubeconfig: Path, namespace: str, service: str, remote: int) -> Iterator[str]:
    local = free_port()
    proc = subprocess.Popen(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "port-forward",
            f"svc/{service}",
            f"{local}:{remote}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"port-forward to {service}", lambda: _reachable(local), 60, 1)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run_in_cluster(cluster: dict[str, Any], name: str, script: str) -> str:
    """Run ``script`` with the pipeline image in the workloads namespace (the component's Feast repo and
    credentials mounted, as its own pods have them); return its log."""
    endpoints = _endpoints(cluster)
    job = manifests.feast_apply_job(
        _component(), NAMESPACE, images.reference(images.for_component("pipeline", COMPONENT)), {"data": {}}, endpoints
    )
    job["metadata"]["name"] = f"{COMPONENT}-{name}-{int(time.time())}"
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"], container["args"] = ["python", "-c"], [script]
    container["env"].append({"name": "KAFKA_BOOTSTRAP", "value": endpoints.kafka_bootstrap})
    cluster["batch"].create_namespaced_job(NAMESPACE, job)
    job_name = job["metadata"]["name"]

    def finished() -> Any:
        status = cluster["batch"].read_namespaced_job_status(job_name, NAMESPACE).status
        return "ok" if status.succeeded else ("failed" if (status.failed or 0) >= 4 else None)

    outcome = _wait(f"job {job_name}", finished, 900, 5)
    pods = cluster["core"].list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job_name}").items
    log = "\n".join(cluster["core"].read_namespaced_pod_log(p.metadata.name, NAMESPACE) for p in pods)
    assert outcome == "ok", log
    return str(log)


def _component() -> Any:
    from contract.registry import load

    return load(COMPONENT)


def _endpoints(cluster: dict[str, Any]) -> manifests.Endpoints:
    out = cluster["outputs"]
    return manifests.Endpoints(
        kafka_bootstrap=out["kafkaBootstrap"],
        feast_db_host="feast-postgres.feast.svc.cluster.local",
        feast_redis=out["feastOnlineStore"],
        mlflow_uri=out["mlflowTrackingUri"],
        s3_endpoint="http://mlflow-s3.mlflow.svc.cluster.local:8333",
        kfp_api=out["kubeflowPipelinesApi"],
    )


def _isvc(cluster: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = cluster["custom"].get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", COMPONENT
    )
    return obj


def _rollout_books(cluster: dict[str, Any]) -> dict[str, str]:
    """The rollout's ConfigMap (``serving.rollout.cluster_backend``)."""
    return dict(cluster["core"].read_namespaced_config_map(f"{COMPONENT}-rollout", NAMESPACE).data or {})


def _served_version(isvc: dict[str, Any]) -> str:
    from serving.inference_service import served_version

    return served_version(isvc)


def _ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _canary_command(cluster: dict[str, Any], prometheus: str, mlflow: str, *args: str) -> dict[str, Any]:
    return canary_checks.canary_command(cluster["kubeconfig"], NAMESPACE, prometheus, mlflow, *args)


def _canary(cluster: dict[str, Any], prometheus: str, mlflow: str, *args: str) -> str:
    command = _canary_command(cluster, prometheus, mlflow, *args)
    result = subprocess.run(**command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(result.stdout)


def _split(cluster: dict[str, Any]) -> list[int]:
    """The percents the InferenceService reports routing, sorted (``status.components.predictor.traffic``)."""
    predictor = _isvc(cluster).get("status", {}).get("components", {}).get("predictor", {})
    return sorted(int(t.get("percent", 0)) for t in predictor.get("traffic", []))


def test_component_lifecycle_on_kind(stack: Any, cluster: dict[str, Any]) -> None:
    custom = cluster["custom"]
    outputs = cluster["outputs"]
    assert outputs[f"{COMPONENT}InferenceService"] == f"{NAMESPACE}/{COMPONENT}"

    # Streaming: the operator runs the component's job.
    def flink_running() -> bool:
        flink = custom.get_namespaced_custom_object(
            "flink.apache.org", "v1beta1", NAMESPACE, "flinkdeployments", f"{COMPONENT}-features"
        )
        return bool(flink.get("status", {}).get("jobStatus", {}).get("state") == "RUNNING")

    _wait("the Flink job RUNNING", flink_running)

    # Events in, online features out.
    _run_in_cluster(
        cluster,
        "produce",
        "import os, time\n"
        "from contract.registry import load\n"
        "from pipelines.streaming.producer import advance_watermark, produce\n"
        f"c = load({COMPONENT!r}); start = int(time.time() * 1000) - 3_600_000\n"
        "events = list(c.generate(20000, start, 7))\n"
        "print('sent', produce(c, os.environ['KAFKA_BOOTSTRAP'], events))\n"
        "advance_watermark(c, os.environ['KAFKA_BOOTSTRAP'], int(time.time() * 1000))\n",
    )
    component = _component()
    group = component.streaming.groups[0]

    def online_features() -> bool:
        log = _run_in_cluster(
            cluster,
            "features",
            "import json\nfrom feast import FeatureStore\n"
            f"s = FeatureStore(repo_path={manifests.FEAST_DIR!r})\n"
            f"rows = s.get_online_features(features={component.feature_refs()[:1]!r}, "
            f"entity_rows=[{{{group.entity!r}: k}} for k in range(50)]).to_dict()\n"
            "print(json.dumps({k: sum(v is not None for v in vs) for k, vs in rows.items()}))\n",
        )
        counts = json.loads(log.strip().splitlines()[-1])
        return any(n > 0 for k, n in counts.items() if k != group.entity)

    _wait("online features in Feast", online_features, 900, 30)

    # Training through the KFP API: a champion, then a challenger.
    from pipelines.training.runner import PipelineParams, run_cluster

    # The package the program uploaded: the compiled pipeline plus the steps' Feast repo and credentials.
    package = cluster["kubeconfig"].parent / "pipeline.yaml"
    config_map = cluster["core"].read_namespaced_config_map(f"{COMPONENT}-pipeline", NAMESPACE)
    package.write_text(config_map.data["pipeline.yaml"])
    params = PipelineParams(
        component=COMPONENT,
        mlflow_uri=outputs["mlflowTrackingUri"],
        feast_repo=manifests.FEAST_DIR,
        offline_root=f"s3://mlstack-features/{COMPONENT}",
        trials=2,
        concurrency=1,
    )
    with _port_forward(cluster["kubeconfig"], "kubeflow", "ml-pipeline", 8888) as kfp:
        assert run_cluster(kfp, params, package, timeout_s=TIMEOUT_S)["state"] == "SUCCEEDED"
        assert run_cluster(kfp, dataclasses.replace(params, seed=1), package, timeout_s=TIMEOUT_S)["state"]

    # The InferenceService serves the champion.
    _wait("the InferenceService Ready", lambda: _ready(_isvc(cluster)))

    # Canary through kubectl against the real InferenceService, then promote.
    with (
        _port_forward(cluster["kubeconfig"], "monitoring", "prometheus-server", 80) as prometheus,
        _port_forward(cluster["kubeconfig"], "mlflow", "mlflow", 5000) as mlflow,
    ):
        started = _canary(cluster, prometheus, mlflow, "start", COMPONENT, "--share", "10")
        assert "takes 10%" in started
        isvc = _isvc(cluster)
        assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
        books = _rollout_books(cluster)
        canary_version, first_stable = books["canary-version"], books["stable-version"]
        assert _served_version(isvc) == canary_version
        _wait("traffic split 90/10", lambda: _split(cluster) == [10, 90], 600)
        assert "10%" in _canary(cluster, prometheus, mlflow, "status", COMPONENT)
        _canary(cluster, prometheus, mlflow, "promote", COMPONENT)
        promoted = _isvc(cluster)
        assert _rollout_books(cluster)["stable-version"] == canary_version == _served_version(promoted)
        assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
        _wait("the promoted revision on all traffic", lambda: _split(cluster) == [100], 600)

        # The rollout owns the served version and the split (ignoreChanges): `pulumi up` now changes nothing.
        canary_checks.pulumi_up_changes_nothing(stack, lambda: _isvc(cluster), canary_version)

        # A canary of the replaced version, rolled back: the split stays pinned until the reverted revision is ready.
        _canary(cluster, prometheus, mlflow, "start", COMPONENT, "--version", first_stable, "--share", "10")
        _wait("traffic split 90/10 again", lambda: _split(cluster) == [10, 90], 600)
        canary_checks.rollback_waits_for_the_reverted_revision(
            cluster["custom"],
            NAMESPACE,
            lambda: _isvc(cluster),
            _canary_command(cluster, prometheus, mlflow, "rollback", COMPONENT),
            canary_version,
        )
        assert "canary-version" not in _rollout_books(cluster)
        shown = _canary(cluster, prometheus, mlflow, "status", COMPONENT)
        assert "rolled back" in shown and "intended" not in shown, shown
