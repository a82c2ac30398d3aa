"""The retraining trigger on the cluster: a Deployment of ``infra/use_cases/cluster_retraining.py`` (shipped in a
ConfigMap onto the all-components pipeline image: kfp, mlflow, kubernetes and the project's monitoring, pipelines
and serving code), its Service, a volume for its decision log, its own service account and NetworkPolicy.

Placed beside the alert receiver, in Prometheus' namespace (``infra/services/prometheus.py`` names its Service in
Alertmanager's second webhook), so its ingress can be Alertmanager's pods alone (and the Prometheus server's, which
scrapes its metrics); built with the components because it runs their image and acts on their services, as their
pipeline upload does. Deployed only with components and Prometheus.

Least privilege: a Role in the components' namespace allows exactly the calls ``serving/rollout/cluster_backend.py``
makes: ``get``/``patch`` on the components' InferenceServices, ``get``/``patch`` on their ``<component>-rollout``
ConfigMaps and ``create`` on ConfigMaps (a create cannot be limited by name), ``get`` on Knative revisions (which
model version a revision serves; their names are Knative's). Nothing cluster-wide, no list, watch or delete. The KFP
API and MLflow are reached over HTTP with no Kubernetes credentials.

Egress is limited to the KFP API, MLflow, the Prometheus server, cluster DNS and the Kubernetes API (the API
server is not a pod: its port, 443 on GKE's endpoint and 6443 on kind's node, to any address).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import RetrainingSettings
from infra.profiles import Sizing
from infra.services import objects
from infra.services.base import WORKLOADS_NAMESPACE
from infra.services.mlflow import FEATURES_BUCKET
from infra.services.prometheus import SERVER_PORT, TRIGGER, TRIGGER_PORT
from infra.services.prometheus import SERVICE as PROMETHEUS_SERVICE
from infra.use_cases.cluster_retraining import COMPONENT
from infra.use_cases.manifests import APP_UID, FEAST_DIR, Endpoints

SCRIPT = Path(__file__).with_name("cluster_retraining.py")
SCRIPT_DIR = "/opt/mlstack/trigger"
DATA_DIR = "/data"
LABELS = objects.labels(TRIGGER, "retraining")
#: It imports MLflow's, KFP's and Kubernetes' clients and the rollout's analysis (SciPy); it waits most of the time.
SIZE = Sizing(cpu=50, memory=384, cpu_limit=500, memory_limit=768)
LOG_SIZE = "256Mi"
ALERTMANAGER_PODS = {"app.kubernetes.io/name": "alertmanager"}
"""The Alertmanager sub-chart's pods (alertmanager-1.28.0: templates/_helpers.tpl, ``alertmanager.selectorLabels``)."""
PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"}
"""The chart's server pods (prometheus-27.45.0: templates/_helpers.tpl, ``prometheus.server.matchLabels``)."""
KFP_API_PORT = 8888  # ml-pipeline's container port (kubeflow/pipelines@2.14.3: ml-pipeline-apiserver-deployment)
MLFLOW_PORT = 5000  # charts/mlflow: the server's port
API_SERVER_PORTS = (443, 6443)


def rules(components: Sequence[str]) -> list[dict[str, Any]]:
    """Exactly what ``ClusterBackend`` calls, on exactly the components' objects where names can be given."""
    names = sorted(components)
    return [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": names,
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [f"{c}-rollout" for c in names],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": ["serving.knative.dev"], "resources": ["revisions"], "verbs": ["get"]},
    ]


SHIPPED_RETRAINING = RetrainingSettings()
"""The policy of a stack that sets none of the ``retrain*`` keys."""


def trigger_args(
    endpoints: Endpoints,
    prometheus_namespace: str,
    workloads_namespace: str,
    retraining: RetrainingSettings = SHIPPED_RETRAINING,
) -> list[str]:
    """``cluster_retraining``'s command line: the platform's endpoints and the stack's retraining policy."""
    return [
        f"{SCRIPT_DIR}/{SCRIPT.name}",
        "--kfp-host", endpoints.kfp_api,
        "--mlflow-uri", endpoints.mlflow_uri,
        "--prometheus", f"http://{PROMETHEUS_SERVICE}.{prometheus_namespace}.svc.cluster.local",
        "--namespace", workloads_namespace,
        "--feast-repo", FEAST_DIR,
        "--offline-root", f"s3://{FEATURES_BUCKET}/{COMPONENT}",
        *(["--ray-address", endpoints.ray_address] if endpoints.ray_address else []),
        "--log", f"{DATA_DIR}/decisions.jsonl",
        "--host", "0.0.0.0",
        "--port", str(TRIGGER_PORT),
        "--cooldown-s", str(retraining.cooldown_s),
        "--history-s", str(retraining.history_s),
        "--settle-margin-s", str(retraining.settle_margin_s),
        *([] if retraining.on_alerts else ["--no-on-alerts"]),
    ]  # fmt: skip


def _port(port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"protocol": protocol, "port": port}


def network_policy(ns: str, mlflow_namespace: str, kfp_namespace: str) -> objects.Manifest:
    """Ingress from Alertmanager (webhooks) and the Prometheus server (scrapes) only; egress to what it calls."""

    def in_namespace(name: str, pods: dict[str, str] | None = None) -> dict[str, Any]:
        peer: dict[str, Any] = objects.namespaces_peer([name])
        if pods:
            peer["podSelector"] = {"matchLabels": pods}
        return peer

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": TRIGGER, "namespace": ns, "labels": dict(objects.PART_OF)},
        "spec": {
            "podSelector": {"matchLabels": LABELS},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": ALERTMANAGER_PODS}}],
                    "ports": [_port(TRIGGER_PORT)],
                },
                {"from": [{"podSelector": {"matchLabels": PROMETHEUS_PODS}}], "ports": [_port(TRIGGER_PORT)]},
            ],
            "egress": [
                {"to": [in_namespace(kfp_namespace, {"app": "ml-pipeline"})], "ports": [_port(KFP_API_PORT)]},
                {"to": [in_namespace(mlflow_namespace)], "ports": [_port(MLFLOW_PORT)]},
                {"to": [{"podSelector": {"matchLabels": PROMETHEUS_PODS}}], "ports": [_port(SERVER_PORT)]},
                {"to": [in_namespace("kube-system")], "ports": [_port(53, "UDP"), _port(53, "TCP")]},
                {"ports": [_port(p) for p in API_SERVER_PORTS]},
            ],
        },
    }


def trigger_objects(
    components: Sequence[str],
    image: str,
    endpoints: Endpoints,
    namespace: str,
    *,
    workloads_namespace: str = WORKLOADS_NAMESPACE,
    mlflow_namespace: str = "mlflow",
    kfp_namespace: str = "kubeflow",
    retraining: RetrainingSettings = SHIPPED_RETRAINING,
) -> dict[str, objects.Manifest]:
    """Every object of the trigger, by role."""
    if not components:
        raise ValueError("the retraining trigger acts on components: none are configured")
    meta = {"name": TRIGGER, "namespace": namespace, "labels": LABELS}
    script = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {SCRIPT.name: SCRIPT.read_text()}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": True}
    rbac_meta = {"name": f"mlstack-{TRIGGER}", "namespace": workloads_namespace, "labels": LABELS}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": rbac_meta,
            "rules": rules(components)}  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": rbac_meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": rbac_meta["name"]},
        "subjects": [{"kind": "ServiceAccount", "name": TRIGGER, "namespace": namespace}],
    }
    log_claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        # The decision log keeps the cooldowns and what was acted on across restarts (the trigger reads it back).
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": LOG_SIZE}}},
    }
    container = objects.container(
        TRIGGER,
        image,
        SIZE,
        command=["python"],
        args=trigger_args(endpoints, namespace, workloads_namespace, retraining),
        env=[{"name": "HOME", "value": "/tmp"}],
        ports={"http": TRIGGER_PORT},
        mounts=[
            {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        probe={"httpGet": {"path": "/-/healthy", "port": TRIGGER_PORT}, "periodSeconds": 10},
    )
    pod = {
        "serviceAccountName": TRIGGER,
        "automountServiceAccountToken": True,  # it patches InferenceServices (the Role above)
        "securityContext": objects.pod_security(APP_UID),
        "containers": [container],
        "volumes": [
            {"name": "script", "configMap": {"name": TRIGGER}},
            {"name": "data", "persistentVolumeClaim": {"claimName": TRIGGER}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    deployment = objects.deployment(TRIGGER, namespace, LABELS, pod)
    # One pod: one run per component holds only within one process, and the log's volume mounts on one node.
    deployment["spec"]["strategy"] = {"type": "Recreate"}
    deployment["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(TRIGGER_PORT),
        "prometheus.io/path": "/metrics",
    }
    return {
        "script": script,
        "account": account,
        "role": role,
        "role-binding": binding,
        "log": log_claim,
        "deployment": deployment,
        "service": objects.service(TRIGGER, namespace, LABELS, {"http": TRIGGER_PORT}),
        "network-policy": network_policy(namespace, mlflow_namespace, kfp_namespace),
    }


class RetrainTrigger(pulumi.ComponentResource):
    """The trigger's objects (``retrain-trigger-<role>``), after what they call and run."""

    def __init__(
        self,
        name: str,
        manifests: dict[str, objects.Manifest],
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlstack:components:RetrainTrigger", name, None, opts)
        self.resources: dict[str, pulumi.CustomResource] = {}
        for role, manifest in manifests.items():
            child = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(depends_on))
            if manifest["kind"] == "PersistentVolumeClaim":  # a kind objects.register does not map
                body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
                self.resources[role] = k8s.core.v1.PersistentVolumeClaim(f"{name}-{role}", opts=child, **body)
            else:
                self.resources[role] = objects.register(f"{name}-{role}", manifest, child)
        self.register_outputs({})
