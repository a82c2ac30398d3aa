"""Prometheus: scrapes the model servers (``prometheus.io/*`` pod annotations) for the canary analysis."""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs, port_forward

SERVICE = "prometheus-server"


class Prometheus(PlatformService):
    """The Prometheus server alone: no Alertmanager, Pushgateway, node exporter or kube-state-metrics."""

    kind = "Prometheus"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        server = args.profile["prometheus.server"]
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
                "configmapReload": {
                    "prometheus": {
                        "resources": {
                            "requests": {"cpu": "5m", "memory": "16Mi"},
                            "limits": {"cpu": "50m", "memory": "64Mi"},
                        }
                    }
                },
                "alertmanager": {"enabled": False},
                "prometheus-pushgateway": {"enabled": False},
                "prometheus-node-exporter": {"enabled": False},
                "kube-state-metrics": {"enabled": False},
            },
        )
        self.done(
            {
                "url": f"http://{SERVICE}.{args.namespace}.svc.cluster.local",
                "ui": port_forward(args.namespace, SERVICE, 9090, 80),
                "version": versions.PROMETHEUS.version,
            }
        )
