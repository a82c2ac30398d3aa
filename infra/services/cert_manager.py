"""cert-manager: certificates for the operators' admission webhooks (Flink operator, KServe)."""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs


class CertManager(PlatformService):
    """cert-manager from its upstream chart, CRDs included."""

    kind = "CertManager"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        p = args.profile
        controller, webhook, cainjector = (
            p["cert-manager.controller"],
            p["cert-manager.webhook"],
            p["cert-manager.cainjector"],
        )
        self.release = self.chart(
            "chart",
            versions.CERT_MANAGER,
            {
                "crds": {"enabled": True, "keep": False},
                "replicaCount": controller.replicas,
                "resources": controller.resources(),
                "webhook": {"replicaCount": webhook.replicas, "resources": webhook.resources()},
                "cainjector": {"replicaCount": cainjector.replicas, "resources": cainjector.resources()},
                "global": {"leaderElection": {"namespace": args.namespace}},
            },
        )
        self.done({"version": versions.CERT_MANAGER.version})
