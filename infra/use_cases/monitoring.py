"""A component's monitor on the cluster, for a component whose labels come back (``StreamingSpec.feedback``): the
monitor job (``monitoring/monitor_job.py``) as a ``FlinkDeployment`` of the streaming image beside the feature job,
and the monitor exporter (``monitoring.exporter``) as a Deployment of the component's pipeline image (the main
environment and the component's code), which the cluster's Prometheus scrapes through its pod annotations (the
chart's ``kubernetes-pods`` job, as it scrapes the model servers). The topics (``<c>.scored``,
``<c>.predictions.dlq``) are ``contract.streaming.topics``', created with the others by ``streaming.kafka_topics``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from contract import Component
from infra.profiles import Sizing
from infra.services import objects
from infra.use_cases.manifests import Endpoints, component_labels, object_meta, secret_env, workload_pod
from infra.use_cases.streaming import APP_DIR, flink_application, launch, state_root

MONITOR_SCRIPT = f"{APP_DIR}/monitoring/monitor_job.py"
EXPORTER_MODULE = "monitoring.exporter"
EXPORTER_PORT = 9464
HISTORY_DIR = "/data/history"
#: One slot is plenty: the job parses and joins each prediction once (no Python functions run in the TaskManager).
MONITOR_TASK_MANAGER = {"cpu": 0.25, "memory": "1024m"}
#: The exporter holds a window of predictions per version and imports pandas, SciPy and MLflow's client.
EXPORTER_SIZE = Sizing(cpu=100, memory=384, cpu_limit=500, memory_limit=768)
EXPORTER_ROLE = "monitor-exporter"


def monitored(component: Component) -> bool:
    """Only a component with feedback has labels for its predictions, so a monitor."""
    return component.streaming.feedback is not None


def monitor_args(component: Component, endpoints: Endpoints) -> list[str]:
    """PythonDriver arguments: the monitor job in the image, the feature job's flags with its own checkpoints."""
    job = dataclasses.replace(launch(component, endpoints), checkpoints=f"{monitor_state(component)}/checkpoints")
    return ["-pyclientexec", "/usr/local/bin/python", "-py", MONITOR_SCRIPT, *job.job_args()]


def monitor_state(component: Component) -> str:
    """The monitor job's checkpoints and HA metadata, apart from the feature job's."""
    return f"{state_root(component)}/monitor"


def monitor_deployment(component: Component, namespace: str, image: str, endpoints: Endpoints) -> dict[str, Any]:
    """The monitor job, ``<component>-monitor``: one TaskManager slot, the feature job's conventions otherwise."""
    args = monitor_args(component, endpoints)
    return flink_application(
        component, "monitor", namespace, image, endpoints, args, monitor_state(component), MONITOR_TASK_MANAGER, 1
    )


def exporter_name(component: Component) -> str:
    return f"{component.name}-{EXPORTER_ROLE}"


def exporter_objects(
    component: Component, namespace: str, image: str, endpoints: Endpoints, monitoring_namespace: str
) -> dict[str, dict[str, Any]]:
    """The exporter's service account (no role, no token), Deployment, Service and the NetworkPolicy letting
    Prometheus' namespace reach its metrics port, by role."""
    name = exporter_name(component)
    labels = component_labels(component, EXPORTER_ROLE)
    args = [
        "--component", component.name,
        "--bootstrap", endpoints.kafka_bootstrap,
        "--tracking-uri", endpoints.mlflow_uri,
        "--metrics-port", str(EXPORTER_PORT),
        "--history", HISTORY_DIR,
    ]  # fmt: skip
    env = [
        # Profiles are artifacts of the version's MLflow run, in the object store.
        secret_env(component, "AWS_ACCESS_KEY_ID", "s3-access-key"),
        secret_env(component, "AWS_SECRET_ACCESS_KEY", "s3-secret-key"),
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": endpoints.s3_endpoint},
        {"name": "HOME", "value": "/tmp"},
    ]
    container = objects.container(
        "exporter",
        image,
        EXPORTER_SIZE,
        command=["python", "-m", EXPORTER_MODULE],
        args=args,
        env=env,
        ports={"metrics": EXPORTER_PORT},
        mounts=[{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
        probe={"httpGet": {"path": "/metrics", "port": EXPORTER_PORT}, "periodSeconds": 15},
    )
    volumes = [
        # The history lives as long as the pod; Prometheus keeps the series (issue 18's offline copy is a report's).
        {"name": "data", "emptyDir": {"sizeLimit": "512Mi"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    pod = {**workload_pod(container, volumes), "serviceAccountName": name}
    deployment = objects.deployment(name, namespace, labels, pod)
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(EXPORTER_PORT),
        "prometheus.io/path": "/metrics",
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": object_meta(component, EXPORTER_ROLE, namespace),
        "automountServiceAccountToken": False,  # it calls no Kubernetes API
    }
    scrape = objects.network_policy(
        namespace, f"{name}-scrape", labels, [EXPORTER_PORT], [monitoring_namespace] if monitoring_namespace else []
    )
    scrape["metadata"]["labels"]["mlstack.io/component"] = component.name
    return {
        f"{EXPORTER_ROLE}-account": account,
        EXPORTER_ROLE: deployment,
        f"{EXPORTER_ROLE}-service": objects.service(name, namespace, labels, {"metrics": EXPORTER_PORT}),
        f"{EXPORTER_ROLE}-scrape": scrape,
    }
