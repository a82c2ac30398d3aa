"""KServe in Serverless (Knative) mode with Kourier as its networking layer.

The serving code rolls out canaries with ``canaryTrafficPercent``, which only Knative can split by request
(see ``serving/inference_service.py``). So this installs the Knative Operator, a ``KnativeServing`` with Kourier
(the light networking layer, no Istio) sized by the profile, then KServe's CRDs and controller.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import versions
from infra.profiles import Profile
from infra.services.base import PlatformService, ServiceArgs

KNATIVE_NAMESPACE = "knative-serving"
# Where the pods that forward requests to model servers run: the activator and autoscaler always in knative-serving;
# the Kourier gateway there too when the Knative Operator installs it, in kourier-system with net-kourier's own
# release manifest. NetworkPolicies in the workloads namespace admit both.
KNATIVE_INGRESS_NAMESPACES = (KNATIVE_NAMESPACE, "kourier-system")
KNATIVE_REVISION_LABEL = "serving.knative.dev/revision"  # set by Knative on every revision's pods
KOURIER_NODE_PORT = 31080  # kind maps it to the host (infra.cluster.kind.INGRESS_NODE_PORT)
KOURIER_GATEWAY_LABELS = {"app": "3scale-kourier-gateway"}  # the gateway pods of net-kourier's release manifest

# KnativeServing workload name -> (container, profile key)
_WORKLOADS = {
    "activator": ("activator", "knative.activator"),
    "autoscaler": ("autoscaler", "knative.autoscaler"),
    "controller": ("controller", "knative.controller"),
    "webhook": ("webhook", "knative.webhook"),
    "3scale-kourier-gateway": ("kourier-gateway", "knative.kourier-gateway"),
    "net-kourier-controller": ("controller", "knative.kourier-controller"),
}


def knative_serving(profile: Profile, domain: str, node_port: bool) -> dict[str, Any]:
    """The ``KnativeServing`` custom resource: Kourier ingress, the domain, and every workload sized."""
    # The operator's Kourier settings are ``enabled`` and ``service-type`` only (no node port), so on kind the
    # gateway stays ClusterIP and ``kourier_node_port`` adds a Service on the fixed port kind maps to the host.
    kourier: dict[str, Any] = {"enabled": True, "service-type": "ClusterIP" if node_port else "LoadBalancer"}
    workloads = []
    for name, (container, key) in _WORKLOADS.items():
        w = profile[key]
        res = w.resources()
        workloads.append(
            {
                "name": name,
                "replicas": w.replicas,
                "resources": [{"container": container, "requests": res["requests"], "limits": res["limits"]}],
            }
        )
    return {
        "apiVersion": "operator.knative.dev/v1beta1",
        "kind": "KnativeServing",
        # KServe's controller is installed only once Knative Serving reports Ready (pulumi-kubernetes waits on it).
        "metadata": {
            "name": "knative-serving",
            "namespace": KNATIVE_NAMESPACE,
            "annotations": {"pulumi.com/waitFor": "condition=Ready"},
        },
        "spec": {
            "version": versions.KNATIVE_VERSION.lstrip("v").rsplit(".", 1)[0],
            "ingress": {"kourier": kourier},
            "config": {
                "network": {"ingress-class": "kourier.ingress.networking.knative.dev"},
                "domain": {domain: ""},
            },
            "high-availability": {"replicas": 1},
            "workloads": workloads,
        },
    }


def kourier_node_port() -> dict[str, Any]:
    """A NodePort Service on the Kourier gateway pods at the port the kind cluster maps to the host."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kourier-host",
            "namespace": KNATIVE_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "mlstack"},
        },
        "spec": {
            "type": "NodePort",
            "selector": KOURIER_GATEWAY_LABELS,
            "ports": [
                {"name": "http2", "port": 80, "targetPort": 8080, "nodePort": KOURIER_NODE_PORT, "protocol": "TCP"}
            ],
        },
    }


class KServe(PlatformService):
    """Knative Operator -> KnativeServing (Kourier) -> KServe CRDs -> KServe controller (Serverless mode)."""

    kind = "KServe"

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        domain: str,
        node_port_ingress: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, args, opts)
        self.knative_operator = self.chart(
            "knative-operator", versions.KNATIVE_OPERATOR, {}, depends_on=list(args.depends_on)
        )
        self.serving_namespace = self.register(
            "knative-namespace",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KNATIVE_NAMESPACE}},
        )
        self.knative_serving = self.register(
            "knative-serving",
            knative_serving(args.profile, domain, node_port_ingress),
            depends_on=[self.knative_operator, self.serving_namespace],
        )
        if node_port_ingress:
            self.register("kourier-host", kourier_node_port(), depends_on=[self.knative_serving])
        self.crds = self.chart("crds", versions.KSERVE_CRD, {})
        controller = args.profile["kserve.controller"]
        self.controller = self.chart(
            "controller",
            versions.KSERVE,
            {
                "kserve": {
                    "controller": {
                        "deploymentMode": "Serverless",
                        "resources": controller.resources(),
                        "gateway": {"domain": domain, "disableIstioVirtualHost": True},
                    }
                }
            },
            depends_on=[self.crds, self.knative_serving, *args.depends_on],
        )
        self.done(
            {
                "version": versions.KSERVE.version,
                "knative_version": versions.KNATIVE_VERSION,
                "domain": domain,
                "deployment_mode": "Serverless",
            }
        )
