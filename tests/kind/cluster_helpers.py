"""What the kind tier's tests on the ``fraud`` component share: the skip reason, the cluster's clients after
``pulumi up``, waiting, port-forwards, Jobs of the component's pipeline image in the workloads namespace, and the
InferenceService, its rollout ConfigMap and the training run's package and parameters as the cluster holds them."""

from __future__ import annotations

import contextlib
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

COMPONENT = "fraud"
NAMESPACE = "mlstack"
TIMEOUT_S = 1800


def missing() -> str | None:
    """What the kind tier lacks on this machine, in one line (None: it can run)."""
    if deploy.pulumi_cli() is None:
        return "pulumi CLI not found: install it (https://www.pulumi.com/docs/install/) or run `make tools`"
    if shutil.which("kubectl") is None:
        return "kubectl not found: install kubectl (https://kubernetes.io/docs/tasks/tools/)"
    return preflight.kind_cli() or preflight.docker()


def up(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
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
        "apps": client.AppsV1Api(),
        "batch": client.BatchV1Api(),
        "custom": client.CustomObjectsApi(),
    }


def wait(what: str, check: Any, timeout_s: float = TIMEOUT_S, every_s: float = 10) -> Any:
    """``check()``'s first truthy value, polled every ``every_s``; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@contextlib.contextmanager
def port_forward(kubeconfig: Path, namespace: str, service: str, remote: int) -> Iterator[str]:
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
        wait(f"port-forward to {service}", lambda: _reachable(local), 60, 1)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _reachable(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_job(
    cluster: dict[str, Any], name: str, script: str, env: list[dict[str, Any]] | None = None, retries: bool = True
) -> str:
    """Start ``script`` with the pipeline image in the workloads namespace (the component's Feast repo and
    credentials mounted, as its own pods have them, and ``KAFKA_BOOTSTRAP``); return the Job's name. Without
    ``retries`` a failed pod fails the Job (a script that must not run twice, such as one that produces events)."""
    ep = endpoints(cluster)
    job = manifests.feast_apply_job(
        component(), NAMESPACE, images.reference(images.for_component("pipeline", COMPONENT)), {"data": {}}, ep
    )
    job["metadata"]["name"] = f"{COMPONENT}-{name}-{int(time.time())}"
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"], container["args"] = ["python", "-c"], [script]
    container["env"] += [{"name": "KAFKA_BOOTSTRAP", "value": ep.kafka_bootstrap}, *(env or [])]
    if not retries:
        job["spec"]["backoffLimit"] = 0
        job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    cluster["batch"].create_namespaced_job(NAMESPACE, job)
    return str(job["metadata"]["name"])


def job_outcome(cluster: dict[str, Any], job_name: str) -> str | None:
    """``ok``, ``failed`` (its ``Failed`` condition, or more failed pods than its backoff limit), or None while it
    runs."""
    job = cluster["batch"].read_namespaced_job_status(job_name, NAMESPACE)
    status, limit = job.status, job.spec.backoff_limit or 0
    gave_up = any(c.type == "Failed" and c.status == "True" for c in status.conditions or [])
    return "ok" if status.succeeded else ("failed" if gave_up or (status.failed or 0) > limit else None)


def job_log(cluster: dict[str, Any], job_name: str) -> str:
    pods = cluster["core"].list_namespaced_pod(NAMESPACE, label_selector=f"job-name={job_name}").items
    return "\n".join(str(cluster["core"].read_namespaced_pod_log(p.metadata.name, NAMESPACE)) for p in pods)


def run_in_cluster(
    cluster: dict[str, Any], name: str, script: str, env: list[dict[str, Any]] | None = None, retries: bool = True
) -> str:
    """``start_job`` and wait for it; return its log."""
    job_name = start_job(cluster, name, script, env, retries)
    outcome = wait(f"job {job_name}", lambda: job_outcome(cluster, job_name), 900, 5)
    log = job_log(cluster, job_name)
    assert outcome == "ok", log
    return log


def component() -> Any:
    from contract.registry import load

    return load(COMPONENT)


def endpoints(cluster: dict[str, Any]) -> manifests.Endpoints:
    out = cluster["outputs"]
    return manifests.Endpoints(
        kafka_bootstrap=out["kafkaBootstrap"],
        feast_db_host="feast-postgres.feast.svc.cluster.local",
        feast_redis=out["feastOnlineStore"],
        mlflow_uri=out["mlflowTrackingUri"],
        s3_endpoint="http://mlflow-s3.mlflow.svc.cluster.local:8333",
        kfp_api=out["kubeflowPipelinesApi"],
    )


def flink_running(cluster: dict[str, Any], role: str) -> bool:
    """The component's ``FlinkDeployment`` ``<component>-<role>`` runs its job."""
    flink = cluster["custom"].get_namespaced_custom_object(
        "flink.apache.org", "v1beta1", NAMESPACE, "flinkdeployments", f"{COMPONENT}-{role}"
    )
    return bool(flink.get("status", {}).get("jobStatus", {}).get("state") == "RUNNING")


def online_features(cluster: dict[str, Any]) -> bool:
    """Some of the first group's entities have features in Feast's online store (read from inside the cluster)."""
    c = component()
    group = c.streaming.groups[0]
    log = run_in_cluster(
        cluster,
        "features",
        "import json\nfrom feast import FeatureStore\n"
        f"s = FeatureStore(repo_path={manifests.FEAST_DIR!r})\n"
        f"rows = s.get_online_features(features={c.feature_refs()[:1]!r}, "
        f"entity_rows=[{{{group.entity!r}: k}} for k in range(50)]).to_dict()\n"
        "print(json.dumps({k: sum(v is not None for v in vs) for k, vs in rows.items()}))\n",
    )
    counts = json.loads(log.strip().splitlines()[-1])
    return any(n > 0 for k, n in counts.items() if k != group.entity)


def pipeline_package(cluster: dict[str, Any]) -> Path:
    """The package the program uploaded: the compiled pipeline plus the steps' Feast repo and credentials."""
    package = Path(cluster["kubeconfig"]).parent / "pipeline.yaml"
    config_map = cluster["core"].read_namespaced_config_map(f"{COMPONENT}-pipeline", NAMESPACE)
    package.write_text(config_map.data["pipeline.yaml"])
    return package


def pipeline_params(cluster: dict[str, Any], **overrides: Any) -> Any:
    """The training run's parameters on the cluster (``PipelineParams``), two trials unless overridden."""
    from pipelines.training.runner import PipelineParams

    settings: dict[str, Any] = {"trials": 2, "concurrency": 1, **overrides}
    return PipelineParams(
        component=COMPONENT,
        mlflow_uri=cluster["outputs"]["mlflowTrackingUri"],
        feast_repo=manifests.FEAST_DIR,
        offline_root=f"s3://mlstack-features/{COMPONENT}",
        **settings,
    )


def read_isvc(cluster: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = cluster["custom"].get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", COMPONENT
    )
    return obj


def rollout_books(cluster: dict[str, Any]) -> dict[str, str]:
    """The rollout's ConfigMap (``serving.rollout.cluster_backend``)."""
    return dict(cluster["core"].read_namespaced_config_map(f"{COMPONENT}-rollout", NAMESPACE).data or {})


def served_version(obj: dict[str, Any]) -> str:
    from serving.inference_service import served_version

    return served_version(obj)


def ready(obj: dict[str, Any]) -> bool:
    conditions = obj.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def split(cluster: dict[str, Any]) -> list[int]:
    """The percents the InferenceService reports routing, sorted (``status.components.predictor.traffic``)."""
    predictor = read_isvc(cluster).get("status", {}).get("components", {}).get("predictor", {})
    return sorted(int(t.get("percent", 0)) for t in predictor.get("traffic", []))
