"""A component's streaming side: its Kafka topics (Strimzi ``kafka.strimzi.io/v1`` ``KafkaTopic``), its feature job
on the Flink Kubernetes Operator (``flink.apache.org/v1beta1`` ``FlinkDeployment`` running the shared template
``pipelines/streaming/job.py``) and the pusher that moves the job's window results into Feast. The pusher serves the
stream's Prometheus series (freshness, topic records, consumer lag) and is scraped as the monitor exporter is: pod
annotations read by the Prometheus chart's ``kubernetes-pods`` job (``infra/UPSTREAM-CHECKS.md``, Prometheus rows),
a named container port, a NetworkPolicy letting only the monitoring namespace in on that port."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from contract import Component
from contract.streaming import topics
from infra.services import objects
from infra.services.mlflow import FLINK_BUCKET
from infra.use_cases.manifests import (
    FEAST_DIR,
    Endpoints,
    component_labels,
    feast_env,
    feast_target,
    feast_volume,
    object_meta,
    secret_env,
    sized,
    workload_pod,
)
from pipelines.sizing import mebibytes, millicores
from pipelines.streaming.launch import ARCHIVE_MODULE, JOB_MODULE, PUSHER_MODULE, StreamingLaunch

TOPIC_API = "kafka.strimzi.io/v1"
FLINK_API = "flink.apache.org/v1beta1"
# The pinned operator (1.13.0) knows Flink 2.2 (FlinkVersion.v2_2), the version the streaming image runs.
FLINK_VERSION = "v2_2"
FLINK_UID = 9999  # the flink user of images/streaming
PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
FLINK_PYTHON_JAR = "local:///opt/flink/opt/flink-python-2.2.1.jar"
JOB_JARS = (
    "file:///opt/flink/usrlib/flink-sql-connector-kafka-5.0.0-2.2.jar",
    "file:///opt/flink/usrlib/streaming-udf-1.0.0.jar",
)
SPEC_DIR = "/opt/mlstack/spec"
APP_DIR = "/app"  # where images/streaming copies the repo's packages (its PYTHONPATH)
PUSHER_ROLE = "feature-pusher"
#: The pusher's ``/metrics`` (beside the monitor exporter's 9464, so a target's port says which program it is).
PUSHER_METRICS_PORT = 9465


# -- Kafka ----------------------------------------------------------------------------------------------------


def kafka_topics(component: Component, namespace: str, cluster: str, replicas: int) -> dict[str, dict[str, Any]]:
    """One ``KafkaTopic`` per topic of ``contract.streaming.topics`` (events, features, dead letters, the inference
    log the InferenceService writes (``predictions``), and labels when the component's labels arrive as their own
    events), by its role as Kubernetes names spell it (``dead-letter``)."""
    partitions = component.streaming.partitions
    out = {}
    for role, topic in topics(component.name, labels=component.streaming.feedback is not None).items():
        # Kubernetes names cannot hold '_': the object name is derived, the topic name is exactly the contract's.
        slug = role.replace("_", "-")
        out[slug] = {
            "apiVersion": TOPIC_API,
            "kind": "KafkaTopic",
            "metadata": {
                "name": f"{component.name.replace('_', '-')}-{slug}",
                "namespace": namespace,
                "labels": {"strimzi.io/cluster": cluster, "mlstack.io/component": component.name},
                "annotations": {"pulumi.com/waitFor": "condition=Ready"},
            },
            "spec": {
                "topicName": topic,
                "partitions": partitions,
                "replicas": replicas,
                "config": {"retention.ms": 7 * 24 * 3600 * 1000 if role != "features" else 24 * 3600 * 1000},
            },
        }
    return out


# -- Flink ----------------------------------------------------------------------------------------------------


def spec_config_map(component: Component, namespace: str) -> dict[str, Any]:
    """The streaming job spec (``StreamingSpec.to_json_dict``) the job reads with ``--spec``."""
    spec = json.dumps(component.streaming.to_json_dict(component.name), indent=2, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(component, "streaming-spec", namespace),
        "data": {"spec.json": spec},
    }


def state_root(component: Component) -> str:
    """Where the job keeps checkpoints and HA metadata: the platform's object store, reachable from any node, so
    a TaskManager rescheduled elsewhere (or a second one) restores from the same place."""
    return f"s3://{FLINK_BUCKET}/{component.name}"


def launch(component: Component, endpoints: Endpoints) -> StreamingLaunch:
    """Where the component's job, pusher and archive run against on the cluster (the image's paths, the platform's
    Kafka, Feast repo and object store)."""
    return StreamingLaunch(
        component=component,
        bootstrap=endpoints.kafka_bootstrap,
        spec=f"{SPEC_DIR}/spec.json",
        checkpoints=f"{state_root(component)}/checkpoints",
        jars=JOB_JARS,
        parallelism=component.resources.streaming.replicas,
        feast_repo=FEAST_DIR,
        offline_root=feast_target(component, endpoints).offline_root,
        checkpoint_interval_s=10,
    )


def job_args(component: Component, endpoints: Endpoints) -> list[str]:
    """PythonDriver arguments: the shared job template in the image, then the job's own flags."""
    script = f"{APP_DIR}/{JOB_MODULE.replace('.', '/')}.py"
    return ["-pyclientexec", "/usr/local/bin/python", "-py", script, *launch(component, endpoints).job_args()]


def flink_deployment(component: Component, namespace: str, image: str, endpoints: Endpoints) -> dict[str, Any]:
    """The component's streaming job on the Flink Kubernetes Operator (application mode).

    Kubernetes HA keeps the newest checkpoint's pointer in ConfigMaps, which the operator's ``last-state``
    upgrades need; checkpoints and HA files go to the object store through Flink's S3 plugin (``images/streaming``
    enables it), with the component's S3 key pair from its Secret."""
    hint = component.resources.streaming
    task_manager = {"cpu": millicores(hint.cpu) / 1000, "memory": f"{mebibytes(hint.memory)}m"}
    args = job_args(component, endpoints)
    return flink_application(
        component, "features", namespace, image, endpoints, args, state_root(component), task_manager, hint.replicas
    )


def flink_application(
    component: Component,
    role: str,
    namespace: str,
    image: str,
    endpoints: Endpoints,
    args: list[str],
    state: str,
    task_manager: dict[str, Any],
    parallelism: int,
) -> dict[str, Any]:
    """A ``FlinkDeployment`` named ``<component>-<role>`` running a job of the streaming image (PythonDriver
    ``args``), its checkpoints and HA metadata under ``state``; the feature job's and the monitor's."""
    container = {
        "name": "flink-main-container",
        "env": [
            {"name": "PYTHONPATH", "value": "/app"},
            secret_env(component, "AWS_ACCESS_KEY_ID", "s3-access-key"),
            secret_env(component, "AWS_SECRET_ACCESS_KEY", "s3-secret-key"),
        ],
        "securityContext": objects.container_security(read_only_root=False),
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": FLINK_API,
        "kind": "FlinkDeployment",
        "metadata": object_meta(component, role, namespace),
        "spec": {
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "flinkVersion": FLINK_VERSION,
            "serviceAccount": "flink",  # created in the watched namespace by the operator chart
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "1",
                "execution.checkpointing.dir": f"{state}/checkpoints",
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": f"{state}/ha",
                "s3.endpoint": endpoints.s3_endpoint,
                "s3.path.style.access": "true",
            },
            "podTemplate": {
                "spec": {
                    "securityContext": objects.pod_security(FLINK_UID),
                    "containers": [container],
                    "volumes": [{"name": "spec", "configMap": {"name": f"{component.name}-streaming-spec"}}],
                }
            },
            "jobManager": {"replicas": 1, "resource": {"cpu": 0.25, "memory": "1024m"}},
            "taskManager": {"replicas": parallelism, "resource": task_manager},
            "job": {
                "jarURI": FLINK_PYTHON_JAR,
                "entryClass": PYTHON_DRIVER,
                "args": args,
                "parallelism": parallelism,
                "upgradeMode": "last-state",
                "state": "running",
            },
        },
    }


def _worker(
    component: Component,
    role: str,
    module: str,
    args: list[str],
    namespace: str,
    image: str,
    endpoints: Endpoints,
    ports: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A one-replica consumer of the component's topics that writes to Feast and the object store."""
    container = objects.container(
        role.split("-")[-1],
        image,
        sized(component.resources.serving),
        command=["python", "-m", module],
        args=args,
        env=feast_env(component, endpoints.s3_endpoint),
        ports=ports,
        mounts=[
            {"name": "feast", "mountPath": FEAST_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    )
    pod = workload_pod(container, [feast_volume(component), {"name": "tmp", "emptyDir": {}}])
    return objects.deployment(f"{component.name}-{role}", namespace, component_labels(component, role), pod)


def pusher_launch(component: Component, endpoints: Endpoints) -> StreamingLaunch:
    """The cluster launch with the pusher's ``/metrics`` on the pod's addresses, where Prometheus scrapes it."""
    return dataclasses.replace(launch(component, endpoints), metrics_port=PUSHER_METRICS_PORT, metrics_host="0.0.0.0")


def feature_pusher(component: Component, namespace: str, image: str, endpoints: Endpoints) -> dict[str, Any]:
    """Consumes the job's window results and pushes them to Feast (online) and the offline history; Prometheus
    scrapes its freshness histogram and the stream's topic records and lag (read from Kafka's bootstrap, which it
    consumes from already, at each scrape)."""
    args = pusher_launch(component, endpoints).pusher_args()
    ports = {"metrics": PUSHER_METRICS_PORT}
    deployment = _worker(component, PUSHER_ROLE, PUSHER_MODULE, args, namespace, image, endpoints, ports)
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PUSHER_METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }
    return deployment


def pusher_scrape_policy(component: Component, namespace: str, monitoring_namespace: str) -> dict[str, Any]:
    """``<component>-feature-pusher-scrape``: from outside the workloads namespace, only the monitoring namespace
    (when Prometheus is deployed), only on the pusher's metrics port (the namespace's default deny shuts the rest)."""
    name = f"{component.name}-{PUSHER_ROLE}"
    from_ns = [monitoring_namespace] if monitoring_namespace else []
    policy = objects.network_policy(
        namespace, f"{name}-scrape", component_labels(component, PUSHER_ROLE), [PUSHER_METRICS_PORT], from_ns
    )
    policy["metadata"]["labels"]["mlstack.io/component"] = component.name
    return policy


def event_archive(component: Component, namespace: str, image: str, endpoints: Endpoints) -> dict[str, Any]:
    """Archives the raw events beside the feature history: training builds its labelled examples from them."""
    args = launch(component, endpoints).archive_args()
    return _worker(component, "event-archive", ARCHIVE_MODULE, args, namespace, image, endpoints)
