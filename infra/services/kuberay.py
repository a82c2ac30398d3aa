"""KubeRay: the operator that runs Ray Tune searches as ``RayJob``/``RayCluster`` resources."""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs


class KubeRay(PlatformService):
    """The KubeRay operator chart (CRDs included)."""

    kind = "KubeRay"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        operator = args.profile["kuberay.operator"]
        self.release = self.chart("operator", versions.KUBERAY_OPERATOR, {"resources": operator.resources()})
        self.done({"version": versions.KUBERAY_OPERATOR.version})
