"""Grafana: the dashboards of ``monitoring.dashboards`` on the platform's Prometheus.

The Grafana community chart (``versions.GRAFANA``, fetched at deploy time) runs Grafana and its dashboards sidecar
(kiwigrid's k8s-sidecar), which collects every ConfigMap of the namespace labelled ``grafana_dashboard: "1"`` into
Grafana's file provisioning; the program registers one such ConfigMap per dashboard, its JSON built with
grafana-foundation-sdk from the same panels embedded mode draws (``mlstack monitor report``). The Prometheus data
source is provisioned with the uid the dashboards name (``monitoring.dashboards.DATASOURCE_UID``), read-only.

The admin password is generated here (``GeneratedPassword``) into a Secret the chart reads (``admin.existingSecret``),
so the chart renders no Secret of its own and no password appears in values. ClusterIP only: reach it with
``kubectl port-forward`` (an output). No persistence: dashboards and the data source are provisioned on every start,
and nothing else is kept. The chart's test pod (a Helm test hook, which Pulumi's helm.v4 would render as an ordinary
pod) is off; the sidecar's RBAC is a namespaced Role (read ConfigMaps and Secrets of this namespace: the chart's rule,
``templates/role.yaml``), not a ClusterRole. Ingress is denied but to Grafana's port from its own namespace.
"""

from __future__ import annotations

from typing import Any

import pulumi

import serving.metrics
from infra import versions
from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs, port_forward
from infra.services.passwords import GeneratedPassword
from monitoring.dashboards import DATASOURCE_UID, Dashboard, dashboards, grafana_json

RELEASE = "grafana"
PORT = 3000  # the Grafana container's port (the Service's port 80 targets it)
SECRET = "grafana-admin"
USER_KEY, PASSWORD_KEY = "admin-user", "admin-password"
DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE = "grafana_dashboard", "1"
POD_LABELS = {"app.kubernetes.io/name": "grafana"}
"""The chart's name label (``grafana.selectorLabels``; the instance label is the Helm release's name, which Pulumi
picks), the only Grafana pods in their namespace."""


def prometheus_url(prometheus_namespace: str) -> str:
    """The platform's Prometheus server as Grafana's pod reaches it (``infra/services/prometheus.py``'s Service)."""
    return f"http://prometheus-server.{prometheus_namespace}.svc.cluster.local"


def chart_values(args: ServiceArgs, prometheus_namespace: str) -> dict[str, Any]:
    """The grafana chart's values (checked at grafana-community/helm-charts@grafana-12.11.1: UPSTREAM-CHECKS.md)."""
    profile = args.profile
    return {
        "fullnameOverride": RELEASE,
        "replicas": profile["grafana.server"].replicas,
        "resources": profile["grafana.server"].resources(),
        "admin": {"existingSecret": SECRET, "userKey": USER_KEY, "passwordKey": PASSWORD_KEY},
        "service": {"type": "ClusterIP"},
        "persistence": {"enabled": False},
        "initChownData": {"enabled": False},  # runs as root, and only chowns a persistent volume (none here)
        "testFramework": {"enabled": False},
        "rbac": {"create": True, "namespaced": True, "pspEnabled": False},
        "datasources": {
            "datasources.yaml": {
                "apiVersion": 1,
                "datasources": [
                    {
                        "name": "Prometheus",
                        "type": "prometheus",
                        "uid": DATASOURCE_UID,
                        "url": prometheus_url(prometheus_namespace),
                        "access": "proxy",
                        "isDefault": True,
                        "editable": False,
                    }
                ],
            }
        },
        "sidecar": {
            "resources": profile["grafana.sidecar"].resources(),
            "dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                "resource": "configmap",
                "provider": {"allowUiUpdates": False, "disableDelete": False},
            },
        },
        # No calls home from inside the cluster; sign-up off (the admin adds users).
        "grafana.ini": {
            "analytics": {"reporting_enabled": False, "check_for_updates": False, "check_for_plugin_updates": False},
            "users": {"allow_sign_up": False},
        },
    }


def dashboard_config_map(dashboard: Dashboard, namespace: str) -> objects.Manifest:
    """One dashboard as the sidecar collects it: a ConfigMap with the label, the JSON as its one key."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"dashboard-{dashboard.key}",
            "namespace": namespace,
            "labels": {**objects.labels(RELEASE, "dashboards"), DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
        },
        "data": {f"{dashboard.uid}.json": grafana_json(dashboard)},
    }


class Grafana(PlatformService):
    """Grafana with the project's dashboards, reading the platform's Prometheus."""

    kind = "Grafana"

    def __init__(
        self, name: str, args: ServiceArgs, prometheus_namespace: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(name, args, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.password = GeneratedPassword(f"{name}-admin-password", 32, opts=child)
        self.admin = self.register(
            "admin",
            objects.secret(
                SECRET,
                args.namespace,
                {USER_KEY: pulumi.Output.secret("admin"), PASSWORD_KEY: self.password.result},
            ),
        )
        boards = [
            self.register(f"dashboard-{d.key}", dashboard_config_map(d, args.namespace))
            for d in dashboards(serving.metrics)
        ]
        self.release = self.chart("server", versions.GRAFANA, chart_values(args, prometheus_namespace), [self.admin])
        ns = args.namespace
        self.register("deny", objects.default_deny(ns))
        self.register("allow-server", objects.network_policy(ns, "allow-grafana", POD_LABELS, [PORT], []))
        self.dashboards = boards
        self.done(
            {
                "ui": port_forward(ns, RELEASE, PORT, 80),
                "adminPassword": f"kubectl -n {ns} get secret {SECRET} -o jsonpath='{{.data.{PASSWORD_KEY}}}'"
                " | base64 -d",
                "version": versions.GRAFANA.version,
            }
        )
