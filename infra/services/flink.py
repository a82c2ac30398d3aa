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
        operator, webhook = args.profile["flink.operator"], args.profile["flink.webhook"]
        self.release = self.chart(
            "operator",
            versions.FLINK_OPERATOR,
            {
                "replicas": operator.replicas,
                # The webhook is a second container of the operator pod with its own resources value, empty by
                # default (checked at apache/flink-kubernetes-operator@release-1.13.0:
                # helm/flink-kubernetes-operator/values.yaml `operatorPod.webhook.resources`,
                # templates/controller/deployment.yaml container `flink-webhook`).
                "operatorPod": {"resources": operator.resources(), "webhook": {"resources": webhook.resources()}},
                "webhook": {"create": True},
                # Jobs run in the workloads namespace; the chart grants the job service account there.
                "watchNamespaces": [WORKLOADS_NAMESPACE],
            },
            depends_on=list(args.depends_on),
        )
        self.done({"version": versions.FLINK_OPERATOR.version, "jobs_namespace": WORKLOADS_NAMESPACE})
