"""Prometheus: scrapes the model servers (``prometheus.io/*`` pod annotations) for the canary analysis, evaluates the
project's alert rules and notifies its Alertmanager, which posts every alert to the project's alert receiver.

The rule file is ``monitoring.alert_rules``' (the one the embedded Prometheus loads), mounted by the chart as
``serverFiles."alerting_rules.yml"``; Alertmanager's routing is ``monitoring.alert_routing``'s (the embedded one's),
given to the chart's Alertmanager sub-chart as its ``config``; the chart's Prometheus finds that Alertmanager by its
pod labels (``templates/cm.yaml``). The receiver is ``monitoring/alert_receiver.py`` itself, mounted from a ConfigMap
into a pinned stock Python image: a Deployment and Service here, with a service account that has no role and mounts
no token. With components deployed, Alertmanager's receiver gains a second webhook: the retraining trigger
(``infra/use_cases/retrain_trigger.py`` deploys it in this namespace, on the pipeline image), which acts on them.

The chart's server pod has two containers, the server and its configmap-reload sidecar; both are sized by the
profile (``prometheus.server``, ``prometheus.configmap-reload``), as are Alertmanager (``prometheus.alertmanager``,
no sidecar: the sub-chart's configmapReload is off by default) and the receiver (``prometheus.alert-receiver``).
Ingress into the namespace is denied by default and allowed to the server's port from the namespace itself and from
the clients (the workloads namespace, where the canary analysis may run), to Alertmanager's and the receiver's ports
from the namespace only; ``kubectl port-forward`` is not pod traffic and works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

import serving.metrics
from infra import versions
from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs, port_forward
from monitoring import alert_receiver
from monitoring.alert_routing import SHIPPED_ROUTING, alertmanager_config
from monitoring.alert_rules import rules

SERVICE = "prometheus-server"
SERVER_PORT = 9090  # the server container's port (the Service's port 80 targets it)
ALERTMANAGER = "prometheus-alertmanager"
ALERTMANAGER_PORT = 9093  # the sub-chart's container and Service port (the chart's Prometheus keeps pods on it)
RECEIVER = "alert-receiver"
RECEIVER_PORT = 8080
RECEIVER_LABELS = objects.labels(RECEIVER, "alerting")
RECEIVER_SCRIPT = Path(alert_receiver.__file__).resolve()
TRIGGER = "retrain-trigger"
TRIGGER_PORT = 8080


def receiver_url(namespace: str) -> str:
    """The webhook Alertmanager posts to: the receiver's Service, in-cluster."""
    return f"http://{RECEIVER}.{namespace}.svc.cluster.local:{RECEIVER_PORT}{alert_receiver.WEBHOOK_PATH}"


def trigger_url(namespace: str) -> str:
    """The retraining trigger's webhook (``monitoring.retrain_trigger`` takes Alertmanager's payload there too)."""
    return f"http://{TRIGGER}.{namespace}.svc.cluster.local:{TRIGGER_PORT}{alert_receiver.WEBHOOK_PATH}"


def chart_values(args: ServiceArgs, retraining: bool = False) -> dict[str, Any]:
    """The prometheus chart's values (checked at prometheus-27.45.0: infra/UPSTREAM-CHECKS.md); ``retraining``:
    the trigger is deployed (components are), so Alertmanager posts to it too."""
    webhooks = (trigger_url(args.namespace),) if retraining else ()
    profile = args.profile
    return {
        "fullnameOverride": "prometheus",
        "server": {
            "fullnameOverride": SERVICE,
            "replicaCount": profile["prometheus.server"].replicas,
            "resources": profile["prometheus.server"].resources(),
            "retention": "7d",
            "persistentVolume": {"size": f"{profile.storage_gi}Gi"},
        },
        "configmapReload": {"prometheus": {"resources": profile["prometheus.configmap-reload"].resources()}},
        # Merged into the chart's serverFiles: its prometheus.yml (scrape jobs, rule_files listing this file) stays.
        "serverFiles": {"alerting_rules.yml": rules(serving.metrics)},
        "alertmanager": {
            "enabled": True,
            "fullnameOverride": ALERTMANAGER,
            "automountServiceAccountToken": False,  # it calls no Kubernetes API
            "replicaCount": profile["prometheus.alertmanager"].replicas,
            "resources": profile["prometheus.alertmanager"].resources(),
            # Silences and the notification log survive a restart; 50Mi is the sub-chart's own default (the parent
            # chart raises it to 2Gi, far more than a few silences need).
            "persistence": {"enabled": True, "size": "50Mi"},
            "config": {
                "enabled": True,
                "global": {},
                "templates": [],
                **alertmanager_config(receiver_url(args.namespace), SHIPPED_ROUTING, *webhooks),
            },
        },
        "prometheus-pushgateway": {"enabled": False},
        "prometheus-node-exporter": {"enabled": False},
        "kube-state-metrics": {"enabled": False},
    }


def receiver_objects(args: ServiceArgs) -> dict[str, objects.Manifest]:
    """The alert receiver: its script as a ConfigMap, a token-less service account, the Deployment, the Service."""
    ns, script = args.namespace, RECEIVER_SCRIPT.name
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": RECEIVER, "namespace": ns, "labels": RECEIVER_LABELS},
        "data": {script: RECEIVER_SCRIPT.read_text()},
    }
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": RECEIVER, "namespace": ns, "labels": RECEIVER_LABELS},
        "automountServiceAccountToken": False,  # it calls no API: no role, no token
    }
    container = objects.container(
        RECEIVER,
        versions.ALERT_RECEIVER_IMAGE,
        args.profile["prometheus.alert-receiver"],
        command=["python", "-I", f"/app/{script}"],
        args=["--host", "0.0.0.0", "--port", str(RECEIVER_PORT), "--log", "/data/alerts.jsonl"],
        env=[{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        ports={"http": RECEIVER_PORT},
        mounts=[{"name": "script", "mountPath": "/app", "readOnly": True}, {"name": "data", "mountPath": "/data"}],
        probe={"httpGet": {"path": "/-/healthy", "port": RECEIVER_PORT}, "periodSeconds": 10},
    )
    pod = {
        "serviceAccountName": RECEIVER,
        "automountServiceAccountToken": False,
        "securityContext": objects.pod_security(versions.ALERT_RECEIVER_UID),
        "containers": [container],
        "volumes": [
            {"name": "script", "configMap": {"name": RECEIVER}},
            # The record lives as long as the pod: the receiver logs what arrived, the trigger (issue 19) acts.
            {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }
    replicas = args.profile["prometheus.alert-receiver"].replicas
    return {
        "receiver-script": config_map,
        "receiver-account": account,
        "receiver": objects.deployment(RECEIVER, ns, RECEIVER_LABELS, pod, replicas),
        "receiver-service": objects.service(RECEIVER, ns, RECEIVER_LABELS, {"http": RECEIVER_PORT}),
    }


class Prometheus(PlatformService):
    """The Prometheus server and its Alertmanager (no Pushgateway, node exporter or kube-state-metrics), and the
    project's alert receiver."""

    kind = "Prometheus"

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None, *, retraining: bool = False
    ) -> None:
        super().__init__(name, args, opts)
        self.release = self.chart("server", versions.PROMETHEUS, chart_values(args, retraining))
        for role, manifest in receiver_objects(args).items():
            self.register(role, manifest)
        ns = args.namespace
        self.register("deny", objects.default_deny(ns))
        self.register(
            "allow-server", objects.network_policy(ns, "allow-prometheus", None, [SERVER_PORT], list(args.clients))
        )
        # The sub-chart's pods carry app.kubernetes.io/name=alertmanager (its nameOverride default).
        alertmanager_pods = {"app.kubernetes.io/name": "alertmanager"}
        self.register(
            "allow-alertmanager",
            objects.network_policy(ns, "allow-alertmanager", alertmanager_pods, [ALERTMANAGER_PORT], []),
        )
        self.register(
            "allow-receiver", objects.network_policy(ns, "allow-alert-receiver", RECEIVER_LABELS, [RECEIVER_PORT], [])
        )
        self.done(
            {
                "url": f"http://{SERVICE}.{ns}.svc.cluster.local",
                "ui": port_forward(ns, SERVICE, 9090, 80),
                "alertmanagerUi": port_forward(ns, ALERTMANAGER, ALERTMANAGER_PORT, ALERTMANAGER_PORT),
                "alertsUrl": receiver_url(ns),
                "version": versions.PROMETHEUS.version,
            }
        )
