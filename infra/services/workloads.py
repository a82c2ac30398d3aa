"""The namespace the use-case components' workloads run in, and least-privilege RBAC for the project's own
service accounts there: each gets exactly the verbs on exactly the resources its code calls."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs

# service account -> rules it needs (apiGroups, resources, verbs)
ROLES: dict[str, list[dict[str, Any]]] = {
    # kubectl-canary (serving/): reads InferenceService status and patches canaryTrafficPercent / the version;
    # keeps the rollout's bookkeeping in its ConfigMap (serving/rollout/cluster_backend.py).
    "mlstack-canary": [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
    ],
    # Training pipeline steps: submit a Ray Tune search as a RayJob and follow it.
    "mlstack-trainer": [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
    ],
    # Model servers and Flink jobs call no Kubernetes API at all.
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


def role(name: str, namespace: str, rules: list[dict[str, Any]]) -> objects.Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(objects.PART_OF)},
        "rules": rules,
    }


def role_binding(name: str, namespace: str, subjects: list[dict[str, str]]) -> objects.Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(objects.PART_OF)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subjects,
    }


class Workloads(PlatformService):
    """The workloads namespace with its service accounts, roles and bindings."""

    kind = "Workloads"

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        pipeline_runner: tuple[str, str] | None = None,
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
            if account == "mlstack-trainer" and pipeline_runner is not None:
                # KFP runs pipeline pods as its own service account in its namespace.
                subjects.append({"kind": "ServiceAccount", "name": pipeline_runner[1], "namespace": pipeline_runner[0]})
            r = self.register(f"{account}-role", role(account, ns, rules))
            self.register(f"{account}-binding", role_binding(account, ns, subjects), depends_on=[sa, r])
        self.done({"namespace": ns, "service_accounts": ",".join(ROLES)})
