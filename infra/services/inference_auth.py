"""The inference gateway's key check: Kourier's external authorization, in its own namespace with the keys.

Kourier (net-kourier, installed by the Knative Operator) adds Envoy's ext_authz filter to every listener once
``config-kourier`` names a service (``kourier_config``; keys checked at knative-extensions/net-kourier@knative-v1.19.0:
pkg/reconciler/ingress/config/kourier.go ``extauthz-*`` and ext_authz.go): Envoy asks the service about each request
before routing it, a 200 lets it through and any other answer goes back to the caller, so a refused request never
reaches a model server. ``failure-mode-allow`` stays false: when the check is down, requests are refused, not let
through. Knative's own probes and ACME's HTTP-01 path skip the check (net-kourier's status_vhost.go and
ingress_translator.go disable the filter there). The filter is on the cluster-local listener too, so in-cluster
callers present a key as well.

The service is ``serving/auth_gateway.py`` run from a ConfigMap in the pinned stock Python image (as the alert
receiver): no image to build. Its namespace holds only the consumers' key Secrets (labelled ``KEY_LABEL``, each the
key's SHA-256, never the key) and the service; its service account may get/list/watch Secrets there and nothing else
(RBAC cannot narrow a list to a label, so the namespace is the boundary). Only the gateway's namespaces reach its port.
"""

from __future__ import annotations

from pathlib import Path

from infra import versions
from infra.profiles import Profile
from infra.services import objects
from serving import auth_gateway

NAMESPACE = "inference-auth"
"""The key Secrets and the key check; ``mlstack keys`` writes here."""
NAME = "key-check"
PORT = 8080
HEALTH_PORT = 8081
LABELS = objects.labels(NAME, "inference-auth")
SCRIPT = Path(auth_gateway.__file__).resolve()
IMAGE = versions.ALERT_RECEIVER_IMAGE  # the same pinned stock Python image, standard library only
UID = versions.ALERT_RECEIVER_UID
TIMEOUT_MS = 2000  # net-kourier's default, stated: past it Envoy refuses the request (failure mode deny)


def kourier_config() -> dict[str, str]:
    """``config-kourier`` entries (KnativeServing ``spec.config.kourier``) that turn the check on."""
    return {
        "extauthz-host": f"{NAME}.{NAMESPACE}.svc.cluster.local:{PORT}",
        "extauthz-protocol": "http",
        "extauthz-failure-mode-allow": "false",
        "extauthz-timeout": str(TIMEOUT_MS),
    }


def auth_objects(profile: Profile, gateway_namespaces: tuple[str, ...]) -> dict[str, objects.Manifest]:
    """The namespace, script, least-privilege account, Deployment, Service and NetworkPolicies of the key check;
    ``gateway_namespaces``: where Kourier's gateway pods run (the only callers)."""
    sizing = profile["kserve.key-check"]
    ns, script = NAMESPACE, SCRIPT.name
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{NAME}-read-keys", "namespace": ns, "labels": LABELS},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{NAME}-read-keys", "namespace": ns, "labels": LABELS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{NAME}-read-keys"},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
    }
    container = objects.container(
        NAME,
        IMAGE,
        sizing,
        command=["python", "-I", f"/app/{script}"],
        args=["--host", "0.0.0.0", "--port", str(PORT), "--health-port", str(HEALTH_PORT), "--namespace", ns],
        env=[{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        ports={"http": PORT, "health": HEALTH_PORT},
        mounts=[{"name": "script", "mountPath": "/app", "readOnly": True}],
        probe={"httpGet": {"path": "/healthz", "port": HEALTH_PORT}, "periodSeconds": 10},
    )
    pod = {
        "serviceAccountName": NAME,
        "securityContext": objects.pod_security(UID),
        "containers": [container],
        "volumes": [{"name": "script", "configMap": {"name": NAME}}],
    }
    return {
        "auth-namespace": objects.namespace(ns),
        "auth-script": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": ns, "labels": LABELS},
            "data": {script: SCRIPT.read_text()},
        },
        "auth-account": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": NAME, "namespace": ns, "labels": LABELS},
        },
        "auth-role": role,
        "auth-role-binding": binding,
        "auth": objects.deployment(NAME, ns, LABELS, pod, sizing.replicas),
        "auth-service": objects.service(NAME, ns, LABELS, {"http": PORT}),
        "auth-deny": objects.default_deny(ns),
        "auth-allow-gateway": objects.network_policy(
            ns, "allow-kourier-gateway", LABELS, [PORT], list(gateway_namespaces), same_namespace=False
        ),
    }
