"""Kubernetes objects of the project's own, as plain manifests, and the one function that registers them.

Builders here return camelCase dicts exactly as ``kubectl apply`` would take them, so the manifest tests validate
the very objects the program registers. Security defaults live here once: non-root, no privilege escalation, all
capabilities dropped, the runtime's default seccomp profile, requests and limits on every container.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.profiles import Sizing

Manifest = dict[str, Any]
PART_OF = {"app.kubernetes.io/part-of": "mlstack"}


def labels(name: str, role: str) -> dict[str, str]:
    """Kubernetes' recommended labels; ``role`` goes in ``app.kubernetes.io/component`` (its name for a part's role)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": role, **PART_OF}


def namespace(name: str, extra_labels: dict[str, str] | None = None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**PART_OF, **(extra_labels or {})}},
    }


def pod_security(uid: int) -> dict[str, Any]:
    """Pod-level security context: a fixed non-root user, its group owning mounted volumes."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def service(name: str, ns: str, selector: dict[str, str], ports: dict[str, int], headless: bool = False) -> Manifest:
    """A ClusterIP Service; ``headless`` for a StatefulSet's governing service (its one pod's DNS name)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": selector},
        "spec": {
            **({"clusterIP": "None"} if headless else {}),
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports.items()],
        },
    }


def deployment(name: str, ns: str, pod_labels: dict[str, str], pod: Manifest, replicas: int = 1) -> Manifest:
    """A Deployment of ``pod`` (a pod spec) whose pods carry ``pod_labels``, which also select them."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": pod_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def secret(name: str, ns: str, data: dict[str, Any]) -> Manifest:
    """A Secret whose values are (secret) Pulumi outputs, never literals."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": dict(PART_OF)},
        "type": "Opaque",
        "stringData": data,
    }


def container(
    name: str,
    image: str,
    workload: Sizing,
    *,
    args: list[str] | None = None,
    command: list[str] | None = None,
    env: list[dict[str, Any]] | None = None,
    ports: dict[str, int] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    probe: dict[str, Any] | None = None,
    read_only_root: bool = True,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": workload.resources(),
        "securityContext": container_security(read_only_root),
    }
    if command:
        spec["command"] = command
    if args:
        spec["args"] = args
    if env:
        spec["env"] = env
    if ports:
        spec["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()]
    if mounts:
        spec["volumeMounts"] = mounts
    if probe:
        spec["readinessProbe"] = probe
        spec["livenessProbe"] = {**probe, "initialDelaySeconds": 30, "periodSeconds": 20}
    return spec


def namespaces_peer(names: list[str]) -> dict[str, Any]:
    """A NetworkPolicy peer: every pod of the named namespaces (by their ``kubernetes.io/metadata.name`` label)."""
    return {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(names)}]
        }
    }


def network_policy(
    ns: str,
    name: str,
    pod_labels: dict[str, str] | None,
    ports: list[int],
    from_ns: list[str],
    *,
    same_namespace: bool = True,
    pod_selector: dict[str, Any] | None = None,
) -> Manifest:
    """Allow ingress to the selected pods (``pod_labels``, or a full ``pod_selector``; neither: every pod) on
    ``ports`` (empty: every port) from the same namespace (unless ``same_namespace`` is false) and from ``from_ns``."""
    peers: list[dict[str, Any]] = [{"podSelector": {}}] if same_namespace else []
    if from_ns:
        peers.append(namespaces_peer(from_ns))
    rule: dict[str, Any] = {"from": peers}
    if ports:
        rule["ports"] = [{"protocol": "TCP", "port": p} for p in ports]
    selector = pod_selector if pod_selector is not None else ({"matchLabels": pod_labels} if pod_labels else {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "labels": dict(PART_OF)},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": [rule]},
    }


def default_deny(ns: str) -> Manifest:
    """Deny all ingress in the namespace unless another policy allows it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress", "namespace": ns, "labels": dict(PART_OF)},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


_TYPED: dict[tuple[str, str], Any] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}
_FIELDS = {
    "stringData": "string_data",
    "roleRef": "role_ref",
    "automountServiceAccountToken": "automount_service_account_token",
}


def register(name: str, manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Register one manifest as its typed Pulumi resource (a ``CustomResource`` for custom kinds)."""
    key = (manifest["apiVersion"], manifest["kind"])
    fields = {_FIELDS.get(k, k): v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    cls = _TYPED.get(key)
    if cls is None:
        return k8s.apiextensions.CustomResource(
            name, api_version=manifest["apiVersion"], kind=manifest["kind"], opts=opts, **fields
        )
    resource: pulumi.CustomResource = cls(name, opts=opts, **fields)
    return resource
