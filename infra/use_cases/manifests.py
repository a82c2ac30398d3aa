"""The Kubernetes objects of one use-case component, built from its declarations as plain manifests.

Pure functions (no Pulumi): ``UseCase`` registers what they return, and the manifest tier validates the same dicts.
Every name starts with the component's name, so two components never collide in the shared workloads namespace.
This module holds what every part shares (endpoints, labels, sizes, credentials, the Feast repo and its apply Job)
and the InferenceService; ``streaming`` has the topics, the Flink job and the feature pusher, ``training`` the
Kubeflow Pipelines package and its upload. Custom resources follow the CRD versions pinned in ``infra/versions.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from contract import Component
from contract.resources import WorkloadHint
from infra.profiles import Sizing
from infra.services import objects
from infra.services.mlflow import FEATURES_BUCKET
from pipelines.features.feast_repo import FeastTarget, feature_store_yaml
from pipelines.sizing import pod_size
from serving.inference_service import inference_service

APP_UID = 10001  # the mlstack user of images/serving and images/pipeline
FEAST_DIR = "/opt/mlstack/feast"
CREDENTIALS_KEYS = ("feast-db-password", "redis-password", "s3-access-key", "s3-secret-key")
"""Keys of the component's credentials Secret, copied from the platform's generated secrets."""


@dataclass(frozen=True)
class Endpoints:
    """Where the platform's services are, from its outputs (``Platform.services[...].endpoints``)."""

    kafka_bootstrap: str
    """``host:port`` of the Kafka bootstrap service."""
    feast_db_host: str
    """Host of Feast's Postgres (SQL registry)."""
    feast_redis: str
    """``host:port`` of Feast's Redis online store."""
    mlflow_uri: str
    """MLflow tracking server URL."""
    s3_endpoint: str
    """S3-compatible object store URL (MLflow's artifact store; also the offline feature history)."""
    kfp_api: str
    """Kubeflow Pipelines API URL."""
    ray_address: str = ""
    """The search cluster's Jobs API URL (KubeRay), which scheduled runs search on; empty: in the step's pod."""


def credentials_secret(component: str) -> str:
    return f"{component}-credentials"


def component_labels(component: Component, role: str) -> dict[str, str]:
    return {**objects.labels(f"{component.name}-{role}", role), "mlstack.io/component": component.name}


def object_meta(component: Component, role: str, namespace: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"{component.name}-{role}",
        "namespace": namespace,
        "labels": component_labels(component, role),
    }


def digest(*parts: str) -> str:
    """Eight hex digits over ``parts``: a Job's name suffix, so a changed input runs a new Job."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


# -- resources ------------------------------------------------------------------------------------------------


def resources(hint: WorkloadHint) -> dict[str, dict[str, str]]:
    """The Kubernetes ``resources`` block of a container sized by ``hint`` (see ``sized``)."""
    return sized(hint).resources()


def secret_env(component: Component, name: str, key: str) -> dict[str, Any]:
    return objects.secret_env(name, credentials_secret(component.name), key)


def feast_env(component: Component, s3_endpoint: str) -> list[dict[str, Any]]:
    """Passwords from the component's Secret (Feast expands ``${VAR}`` in its yaml); the object store's endpoint."""
    return [
        secret_env(component, "FEAST_DB_PASSWORD", "feast-db-password"),
        secret_env(component, "REDIS_PASSWORD", "redis-password"),
        secret_env(component, "AWS_ACCESS_KEY_ID", "s3-access-key"),
        secret_env(component, "AWS_SECRET_ACCESS_KEY", "s3-secret-key"),
        {"name": "AWS_ENDPOINT_URL", "value": s3_endpoint},
        {"name": "FSSPEC_S3_ENDPOINT_URL", "value": s3_endpoint},
        {"name": "HOME", "value": "/tmp"},
    ]


CLIENT_ROLES = ("event-archive", "feast-apply", "pipeline-upload")
"""Pods of a component that only call out (Kafka, Feast, KFP) and accept no connections (the feature pusher is
scraped by Prometheus: ``streaming.pusher_scrape_policy``)."""


def client_network_policy(component: Component, namespace: str) -> dict[str, Any]:
    """Deny all ingress to the component's client-only pods (its server pods are Knative's and Flink's to admit)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(component, "clients-no-ingress", namespace),
        "spec": {
            "podSelector": {
                "matchLabels": {"mlstack.io/component": component.name},
                "matchExpressions": [
                    {"key": "app.kubernetes.io/component", "operator": "In", "values": list(CLIENT_ROLES)}
                ],
            },
            "policyTypes": ["Ingress"],
        },
    }


def sized(hint: WorkloadHint) -> Sizing:
    """A component's hint as a profile entry: requests from the hint, limits by the platform's rule
    (``pipelines.sizing``, which the training pipeline's search step shares)."""
    size = pod_size(hint)
    return Sizing(size.cpu, size.memory, size.cpu_limit, size.memory_limit, hint.replicas)


# -- Feast ----------------------------------------------------------------------------------------------------


def feast_target(component: Component, endpoints: Endpoints) -> FeastTarget:
    """The cluster-mode feature store: SQL registry on Feast's Postgres, its Redis, history on the object store.

    Passwords are ``${VAR}`` that Feast expands from the environment (the component's credentials Secret).
    """
    return FeastTarget(
        registry=f"postgresql+psycopg://feast:${{FEAST_DB_PASSWORD}}@{endpoints.feast_db_host}:5432/feast",
        redis=f"{endpoints.feast_redis},password=${{REDIS_PASSWORD}}",
        offline_root=f"s3://{FEATURES_BUCKET}/{component.name}",
    )


def feast_repo_config_map(component: Component, namespace: str, endpoints: Endpoints) -> dict[str, Any]:
    """``feature_store.yaml`` + ``definitions.py`` of the component's repo (``pipelines.features.feast_repo``)."""
    from pipelines.features.feast_repo import DEFINITIONS

    target = feast_target(component, endpoints)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(component, "feast-repo", namespace),
        "data": {
            "feature_store.yaml": feature_store_yaml(component, target),
            "definitions.py": DEFINITIONS.format(name=component.name, offline=target.offline_root),
        },
    }


def feast_volume(component: Component) -> dict[str, Any]:
    return {"name": "feast", "configMap": {"name": f"{component.name}-feast-repo"}}


def workload_pod(container: dict[str, Any], volumes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A pod spec for the component's own code: the workload account with no API token, the app's user."""
    return {
        **extra,
        "serviceAccountName": "mlstack-workload",
        "automountServiceAccountToken": False,
        "securityContext": objects.pod_security(APP_UID),
        "containers": [container],
        "volumes": volumes,
    }


def job_manifest(component: Component, role: str, namespace: str, suffix: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(component, role, namespace, f"{component.name}-{role}-{suffix}"),
        "spec": {
            "backoffLimit": 4,
            "template": {"metadata": {"labels": component_labels(component, role)}, "spec": pod},
        },
    }


def feast_apply_job(
    component: Component, namespace: str, image: str, repo: dict[str, Any], endpoints: Endpoints
) -> dict[str, Any]:
    """``feast apply`` of the repo against the cluster registry; named by the repo's digest, so an edit re-runs."""
    suffix = digest(*sorted(f"{k}={v}" for k, v in repo["data"].items()), image)
    container = objects.container(
        "feast-apply",
        image,
        sized(component.resources.serving),
        # Feast writes next to the repo; the ConfigMap is read-only, so it runs on a copy.
        command=["sh", "-c"],
        args=[f"cp {FEAST_DIR}/* /tmp/repo/ && feast --chdir /tmp/repo apply"],
        env=feast_env(component, endpoints.s3_endpoint),
        mounts=[
            {"name": "feast", "mountPath": FEAST_DIR, "readOnly": True},
            {"name": "work", "mountPath": "/tmp/repo"},
        ],
    )
    volumes = [feast_volume(component), {"name": "work", "emptyDir": {}}]
    pod = workload_pod(container, volumes, restartPolicy="OnFailure")
    return job_manifest(component, "feast-apply", namespace, suffix, pod)


# -- KServe ---------------------------------------------------------------------------------------------------


def knative_container_user(uid: int) -> dict[str, Any]:
    """The user a Knative-served container runs as, set on the container: Knative refuses it on the pod.

    Knative Serving accepts no pod-level ``securityContext`` field unless ``config-features`` enables
    ``kubernetes.podspec-securitycontext`` (or ``secure-pod-defaults``, for ``seccompProfile`` only); both are disabled
    by default, while the container-level ``runAsNonRoot``, ``runAsUser``, ``runAsGroup`` and ``seccompProfile`` are
    always allowed (checked at knative/serving@knative-v1.19.0: ``PodSpecMask``, ``PodSecurityContextMask`` and
    ``SecurityContextMask`` in pkg/apis/serving/fieldmask.go, defaults in pkg/apis/config/features.go). So the
    predictor keeps Knative's defaults and carries ``objects.pod_security`` minus ``fsGroup`` on its container:
    ``fsGroup`` has no container-level field, and the predictor's only volume, the Feast repo ConfigMap, is
    world-readable (mode 0644) and mounted read-only, so no group needs to own it.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def champion_service(
    component: Component, namespace: str, image: str, version: str, endpoints: Endpoints
) -> dict[str, Any]:
    """The component's InferenceService (``serving.inference_service``) serving ``version`` (empty: the version
    the ``champion`` alias names when the server starts), with its Feast repo and credentials mounted."""
    hint = component.resources.serving
    isvc = inference_service(
        component,
        namespace,
        image,
        version,
        endpoints.mlflow_uri,
        FEAST_DIR,
        resources(hint),
        min_replicas=hint.replicas,
        kafka_bootstrap=endpoints.kafka_bootstrap,  # the inference log, on the component's predictions topic
    )
    predictor = isvc["spec"]["predictor"]
    predictor["serviceAccountName"] = "mlstack-workload"
    predictor["volumes"] = [feast_volume(component)]
    container = predictor["containers"][0]
    container["securityContext"] = {**container["securityContext"], **knative_container_user(APP_UID)}
    container["env"] = [
        *feast_env(component, endpoints.s3_endpoint),
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": endpoints.s3_endpoint},
    ]
    container["volumeMounts"] = [{"name": "feast", "mountPath": FEAST_DIR, "readOnly": True}]
    return isvc
