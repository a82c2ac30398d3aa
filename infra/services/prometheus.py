"""Prometheus: scrapes the model servers (``prometheus.io/*`` pod annotations) for the canary analysis.

The chart's server pod has two containers, the server and its configmap-reload sidecar; both are sized by the
profile (``prometheus.server``, ``prometheus.configmap-reload``), so the profile's total counts both. Ingress into
the namespace is denied by default and allowed to the server's port from the namespace itself and from the clients
(the workloads namespace, where the canary analysis may run); ``kubectl port-forward`` is not pod traffic and works.
"""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs, port_forward

SERVICE = "prometheus-server"
SERVER_PORT = 9090  # the server container's port (the Service's port 80 targets it)


class Prometheus(PlatformService):
    """The Prometheus server alone: no Alertmanager, Pushgateway, node exporter or kube-state-metrics."""

    kind = "Prometheus"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        server = args.profile["prometheus.server"]
        reload = args.profile["prometheus.configmap-reload"]
        self.release = self.chart(
            "server",
            versions.PROMETHEUS,
            {
                "fullnameOverride": "prometheus",
                "server": {
                    "fullnameOverride": SERVICE,
                    "replicaCount": server.replicas,
                    "resources": server.resources(),
                    "retention": "7d",
                    "persistentVolume": {"size": f"{args.profile.storage_gi}Gi"},
                },
                "configmapReload": {"prometheus": {"resources": reload.resources()}},
                "alertmanager": {"enabled": False},
                "prometheus-pushgateway": {"enabled": False},
                "prometheus-node-exporter": {"enabled": False},
                "kube-state-metrics": {"enabled": False},
            },
        )
        # Only the server runs in this namespace (Alertmanager, Pushgateway and exporters are off): its port alone.
        self.register("deny", objects.default_deny(args.namespace))
        self.register(
            "allow-server",
            objects.network_policy(args.namespace, "allow-prometheus", None, [SERVER_PORT], list(args.clients)),
        )
        self.done(
            {
                "url": f"http://{SERVICE}.{args.namespace}.svc.cluster.local",
                "ui": port_forward(args.namespace, SERVICE, 9090, 80),
                "version": versions.PROMETHEUS.version,
            }
        )
