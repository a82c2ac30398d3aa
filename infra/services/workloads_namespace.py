"""The namespace the use-case components' workloads run in, least-privilege RBAC for the project's own service
accounts there (each gets exactly the verbs on exactly the resources its code calls), and its NetworkPolicies.

Ingress into the namespace is denied by default; then allowed from
- the namespace itself (Flink JobManager <-> TaskManagers, Ray head <-> workers);
- Knative's data path (activator, autoscaler, Kourier gateway) to the model servers' revision pods, every port
  (queue-proxy's 8012/8013 for requests, 9090 for the autoscaler's metrics, the probes the activator sends);
- the monitoring namespace to the revision pods (Prometheus scrapes the ``prometheus.io/port`` the
  InferenceService names);
- the Flink operator to the Flink clusters' JobManager REST port (job status, savepoints, upgrades);
- the KubeRay operator to the Ray pods (the RayCluster controller probes the head's dashboard);
- Kubeflow Pipelines' namespace to the search cluster's Ray head, on the Jobs API port only (the search step submits
  there: ``infra/services/kuberay.py``); head <-> workers (GCS 6379, raylets, object managers, workers on ports Ray
  picks) is same-namespace traffic, allowed above.
Each allow exists only when its service is deployed. ``kubectl port-forward`` and kubelet probes are not pod traffic
and pass regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs
from infra.services.kserve import KNATIVE_REVISION_LABEL
from infra.services.kuberay import DASHBOARD_PORT, HEAD_LABELS

FLINK_POD_LABELS = {"type": "flink-native-kubernetes"}  # on every JobManager/TaskManager pod of native Kubernetes mode
FLINK_REST_PORT = 8081  # the JobManager's REST API, which the operator calls
RAY_POD_LABELS = {"ray.io/is-ray-node": "yes"}  # on every head and worker pod KubeRay creates

# service account -> rules it needs (apiGroups, resources, verbs)
ROLES: dict[str, list[dict[str, Any]]] = {
    # kubectl-canary (serving/): reads InferenceService status and patches canaryTrafficPercent / the version;
    # keeps the rollout's bookkeeping in its ConfigMap; reads the Knative revision a split names, to say whether
    # it is ready (serving/rollout/cluster_backend.py).
    "mlstack-canary": [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": ["serving.knative.dev"], "resources": ["revisions"], "verbs": ["get"]},
    ],
    # Model servers, Flink jobs and the Ray search cluster call no Kubernetes API at all. Nor do the training
    # pipeline's steps: they submit searches to the Ray head's Jobs API over HTTP (no RayJob, no pod logs).
    "mlstack-workload": [],
}


def service_account(name: str, namespace: str, calls_api: bool) -> objects.Manifest:
    """An account whose token is mounted only when its code calls the Kubernetes API."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(objects.PART_OF)},
        "automountServiceAccountToken": calls_api,
    }


def _rbac(kind: str, name: str, namespace: str, **fields: Any) -> objects.Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(objects.PART_OF)},
        **fields,
    }


def role(name: str, namespace: str, rules: list[dict[str, Any]]) -> objects.Manifest:
    return _rbac("Role", name, namespace, rules=rules)


def role_binding(name: str, namespace: str, subjects: list[dict[str, str]]) -> objects.Manifest:
    """Binds the role of the same name."""
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    return _rbac("RoleBinding", name, namespace, roleRef=role_ref, subjects=subjects)


@dataclass(frozen=True)
class IngressPeers:
    """Namespaces of the deployed platform services that reach into the workloads namespace (empty: not deployed)."""

    knative: tuple[str, ...] = ()
    """Knative's data path (``KNATIVE_INGRESS_NAMESPACES``) when KServe is deployed."""
    monitoring: str = ""
    """Prometheus' namespace."""
    flink_operator: str = ""
    """The Flink Kubernetes Operator's namespace."""
    kuberay_operator: str = ""
    """The KubeRay operator's namespace."""
    pipelines: str = ""
    """Where Kubeflow Pipelines runs the pipeline steps, which submit searches to the Ray head (with KubeRay)."""


def network_policies(ns: str, peers: IngressPeers) -> dict[str, objects.Manifest]:
    """The workloads namespace's NetworkPolicies by role: deny by default, then each allowed flow."""
    revision_pods = {"matchExpressions": [{"key": KNATIVE_REVISION_LABEL, "operator": "Exists"}]}
    policies = {
        "deny": objects.default_deny(ns),
        "allow-same-namespace": objects.network_policy(ns, "allow-same-namespace", None, [], []),
    }
    if peers.knative:
        policies["allow-knative"] = objects.network_policy(
            ns, "allow-knative", None, [], list(peers.knative), same_namespace=False, pod_selector=revision_pods
        )
    if peers.monitoring:
        policies["allow-monitoring"] = objects.network_policy(
            ns, "allow-monitoring", None, [], [peers.monitoring], same_namespace=False, pod_selector=revision_pods
        )
    if peers.flink_operator:
        policies["allow-flink-operator"] = objects.network_policy(
            ns, "allow-flink-operator", FLINK_POD_LABELS, [FLINK_REST_PORT], [peers.flink_operator],
            same_namespace=False,
        )  # fmt: skip
    if peers.kuberay_operator:
        policies["allow-kuberay-operator"] = objects.network_policy(
            ns, "allow-kuberay-operator", RAY_POD_LABELS, [], [peers.kuberay_operator], same_namespace=False
        )
        if peers.pipelines:
            policies["allow-pipelines-ray-jobs"] = objects.network_policy(
                ns, "allow-pipelines-ray-jobs", HEAD_LABELS, [DASHBOARD_PORT], [peers.pipelines], same_namespace=False
            )
    return policies


class WorkloadsNamespace(PlatformService):
    """The workloads namespace with its service accounts, roles, bindings and NetworkPolicies."""

    # The Pulumi type token (``mlstack:platform:Workloads``) keeps its name: it is part of every child's URN, and a
    # new token would make Pulumi replace the namespace and everything in it on existing stacks.
    kind = "Workloads"

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        peers: IngressPeers | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # Knative and KServe inject into this namespace; it keeps the platform's labels for policy selection.
        super().__init__(name, args, opts, namespace_labels={"mlstack.io/workloads": "true"})
        ns = args.namespace
        for account, rules in ROLES.items():
            sa = self.register(f"{account}-sa", service_account(account, ns, calls_api=bool(rules)))
            if not rules:
                continue
            subjects = [{"kind": "ServiceAccount", "name": account, "namespace": ns}]
            r = self.register(f"{account}-role", role(account, ns, rules))
            self.register(f"{account}-binding", role_binding(account, ns, subjects), depends_on=[sa, r])
        for role_name, policy in network_policies(ns, peers or IngressPeers()).items():
            self.register(role_name, policy)
        self.done({"namespace": ns, "service_accounts": ",".join(ROLES)})
