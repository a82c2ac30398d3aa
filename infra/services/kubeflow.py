"""Kubeflow Pipelines standalone: the upstream kustomizations (cluster-scoped resources, then the platform-agnostic
environment: API server, UI, metadata, Argo Workflows, MySQL, object store), at a pinned release."""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs, port_forward


class KubeflowPipelines(PlatformService):
    """KFP standalone. Upstream creates the ``kubeflow`` namespace and sizes its own pods (see ``infra.profiles``)."""

    kind = "KubeflowPipelines"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts, create_namespace=False)
        # CRDs and the namespace first: the environment's objects are namespaced custom resources among others.
        self.cluster_resources = self.kustomization(
            "cluster-resources", versions.KFP_CLUSTER_RESOURCES, depends_on=list(args.depends_on)
        )
        self.environment = self.kustomization(
            "platform-agnostic", versions.KFP_PLATFORM_AGNOSTIC, depends_on=[self.cluster_resources]
        )
        self.done(
            {
                "api": f"http://ml-pipeline.{args.namespace}.svc.cluster.local:8888",
                "ui": port_forward(args.namespace, "ml-pipeline-ui", 8081, 80),
                "version": versions.KFP_VERSION,
            }
        )
