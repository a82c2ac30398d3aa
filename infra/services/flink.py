"""The Flink Kubernetes Operator: runs each component's streaming job as a ``FlinkDeployment``."""

from __future__ import annotations

import pulumi

from infra import versions
from infra.services.base import WORKLOADS_NAMESPACE, PlatformService, ServiceArgs


class FlinkOperator(PlatformService):
    """The operator chart; its webhook certificate comes from cert-manager (in ``args.depends_on``)."""

    kind = "FlinkOperator"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        operator = args.profile["flink.operator"]
        self.release = self.chart(
            "operator",
            versions.FLINK_OPERATOR,
            {
                "replicas": operator.replicas,
                "operatorPod": {"resources": operator.resources()},
                "webhook": {"create": True},
                # Jobs run in the workloads namespace; the chart grants the job service account there.
                "watchNamespaces": [WORKLOADS_NAMESPACE],
            },
            depends_on=list(args.depends_on),
        )
        self.done({"version": versions.FLINK_OPERATOR.version, "jobs_namespace": WORKLOADS_NAMESPACE})
