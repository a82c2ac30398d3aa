"""A component's training side: the compiled KFP pipeline (with the Kubernetes platform spec its steps need) and
the Job that uploads it to Kubeflow Pipelines (and schedules it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contract import Component
from infra.services import objects
from infra.use_cases.manifests import (
    FEAST_DIR,
    Endpoints,
    credentials_secret,
    digest,
    feast_env,
    feast_target,
    job_manifest,
    object_meta,
    sized,
    workload_pod,
)

# -- Kubeflow Pipelines -----------------------------------------------------------------------------------------

UPLOADER = Path(__file__).with_name("pipeline_upload.py")


def pipeline_package(component: Component, package_yaml: str, endpoints: Endpoints) -> str:
    """The compiled pipeline with what its steps need in the cluster, as KFP's Kubernetes platform spec (the format
    ``kfp-kubernetes`` writes): the component's Feast repo mounted at ``FEAST_DIR`` and its credentials as
    environment variables (copies of both live in the pipeline namespace), plus the object store's endpoint."""
    import yaml

    docs = [d for d in yaml.safe_load_all(package_yaml) if d]
    pipeline = docs[0]
    secret_env = [
        {"secretKey": e["valueFrom"]["secretKeyRef"]["key"], "envVar": e["name"]}
        for e in feast_env(component, endpoints.s3_endpoint)
        if "valueFrom" in e
    ]
    plain_env = [
        {"name": e["name"], "value": e["value"]} for e in feast_env(component, endpoints.s3_endpoint) if "value" in e
    ]
    plain_env.append({"name": "MLFLOW_S3_ENDPOINT_URL", "value": endpoints.s3_endpoint})
    executors: dict[str, Any] = {}
    for name, executor in pipeline["deploymentSpec"]["executors"].items():
        executor["container"]["env"] = [*executor["container"].get("env", []), *plain_env]
        executors[name] = {
            "configMapAsVolume": [
                {"configMapName": f"{component.name}-feast-repo", "mountPath": FEAST_DIR, "optional": False}
            ],
            # No "optional" here: KFP 2.14.3's SecretAsEnv has no such field (added in 2.15.0) and the backend
            # unmarshals this config strictly, failing every run on an unknown field. Without it the driver's
            # SecretKeyRef is required, as intended. Checked at kubeflow/pipelines@2.14.3:
            # kubernetes_platform/proto/kubernetes_executor_config.proto, backend/src/v2/compiler/argocompiler/
            # container.go (protojson.Unmarshal), backend/src/v2/driver/k8s.go.
            "secretAsEnv": [{"secretName": credentials_secret(component.name), "keyToEnv": secret_env}],
        }
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}
    return str(yaml.safe_dump_all([pipeline, platform], sort_keys=False))


def pipeline_config_map(component: Component, namespace: str, package_yaml: str) -> dict[str, Any]:
    """The compiled training pipeline (KFP IR YAML) and the script that uploads it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(component, "pipeline", namespace),
        "data": {"pipeline.yaml": package_yaml, "upload.py": UPLOADER.read_text()},
    }


def pipeline_upload_job(
    component: Component,
    namespace: str,
    image: str,
    package_yaml: str,
    endpoints: Endpoints,
    schedule: str,
) -> dict[str, Any]:
    """Uploads the pipeline (a new version when its content changed) and, with ``schedule``, a recurring run."""
    target = feast_target(component, endpoints)
    args = [
        "/opt/mlstack/pipeline/upload.py",
        "--host",
        endpoints.kfp_api,
        "--package",
        "/opt/mlstack/pipeline/pipeline.yaml",
        "--component",
        component.name,
        "--mlflow-uri",
        endpoints.mlflow_uri,
        "--feast-repo",
        FEAST_DIR,
        "--offline-root",
        target.offline_root,
    ]
    if schedule:
        args += ["--schedule", schedule]
    if endpoints.ray_address:
        args += ["--ray-address", endpoints.ray_address]
    container = objects.container(
        "upload",
        image,
        sized(component.resources.serving),
        command=["python"],
        args=args,
        env=[{"name": "HOME", "value": "/tmp"}],
        mounts=[
            {"name": "pipeline", "mountPath": "/opt/mlstack/pipeline", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    )
    volumes = [
        {"name": "pipeline", "configMap": {"name": f"{component.name}-pipeline"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    pod = workload_pod(container, volumes, restartPolicy="OnFailure")
    return job_manifest(component, "pipeline-upload", namespace, digest(package_yaml, schedule, image), pod)
