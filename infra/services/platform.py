"""Wires the platform services in dependency order on one cluster.

Order: the workloads namespace (the Flink operator watches it) and cert-manager first; the Flink operator and
KServe after cert-manager's chart (their charts create Issuers and Certificates): the chart counts as ready only once
its API check Job has passed, i.e. cert-manager's webhook serves with its CA injected (see
``infra/services/cert_manager.py``); every custom resource after the operator that defines it (inside each
component). Services that do not depend on each other deploy in parallel.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.config import StackConfig
from infra.services.base import WORKLOADS_NAMESPACE, PlatformService, ServiceArgs
from infra.services.cert_manager import CertManager
from infra.services.feast import FeatureStore
from infra.services.flink import FlinkOperator
from infra.services.grafana import Grafana
from infra.services.kafka import Kafka
from infra.services.kserve import KNATIVE_INGRESS_NAMESPACES, KServe
from infra.services.kubeflow import KubeflowPipelines
from infra.services.kuberay import KubeRay
from infra.services.mlflow import Mlflow
from infra.services.prometheus import Prometheus
from infra.services.workloads_namespace import IngressPeers, WorkloadsNamespace

NAMESPACES = {
    "workloads": WORKLOADS_NAMESPACE,
    "cert-manager": "cert-manager",
    "kafka": "kafka",
    "flink": "flink",
    "feast": "feast",
    "mlflow": "mlflow",
    "kubeflow-pipelines": "kubeflow",
    "kuberay": "ray-system",
    "kserve": "kserve",
    "prometheus": "monitoring",
    "grafana": "grafana",
}
# Namespaces whose pods call each data service: the components' jobs and servers, and KFP's pipeline pods.
CLIENTS = (WORKLOADS_NAMESPACE, "kubeflow")


class Platform(pulumi.ComponentResource):
    """Every enabled platform service, in order; ``services`` maps service name -> its ``PlatformService``."""

    def __init__(
        self, name: str, config: StackConfig, provider: k8s.Provider, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlstack:platform:Platform", name, None, opts)
        self.services: dict[str, PlatformService] = {}
        self.left_out: list[str] | None = [] if config.render_dir else None
        """Render mode: what was not fetched (upstream charts, kustomizations)."""
        child = pulumi.ResourceOptions(parent=self)

        def args(service: str, *depends: pulumi.Resource, clients: tuple[str, ...] = ()) -> ServiceArgs:
            return ServiceArgs(
                provider, config.profile, NAMESPACES[service], tuple(depends), clients, left_out=self.left_out
            )

        on = config.enabled
        peers = IngressPeers(
            knative=KNATIVE_INGRESS_NAMESPACES if on("kserve") else (),
            monitoring=NAMESPACES["prometheus"] if on("prometheus") else "",
            flink_operator=NAMESPACES["flink"] if on("flink") else "",
            kuberay_operator=NAMESPACES["kuberay"] if on("kuberay") else "",
            pipelines=NAMESPACES["kubeflow-pipelines"] if on("kubeflow-pipelines") and on("kuberay") else "",
        )
        workloads = WorkloadsNamespace("workloads", args("workloads"), peers=peers, opts=child)
        self.services["workloads"] = workloads
        cert_manager: list[pulumi.Resource] = []
        if on("cert-manager"):
            cm = CertManager("cert-manager", args("cert-manager"), child, gateway=config.gateway)
            self.services["cert-manager"] = cm
            cert_manager = [cm.release]
        if on("kafka"):
            self.services["kafka"] = Kafka("kafka", args("kafka", clients=CLIENTS), child)
        if on("flink"):
            assert workloads.namespace is not None
            self.services["flink"] = FlinkOperator("flink", args("flink", *cert_manager, workloads.namespace), child)
        if on("feast"):
            self.services["feast"] = FeatureStore("feast", args("feast", clients=CLIENTS), child)
        if on("mlflow"):
            # The retraining trigger (with components, beside Prometheus) reads and moves the registry's aliases.
            trigger = (NAMESPACES["prometheus"],) if config.components and on("prometheus") else ()
            self.services["mlflow"] = Mlflow("mlflow", args("mlflow", clients=(*CLIENTS, *trigger)), child)
        if on("kubeflow-pipelines"):
            self.services["kubeflow-pipelines"] = KubeflowPipelines("kubeflow", args("kubeflow-pipelines"), child)
        if on("kuberay"):
            self.services["kuberay"] = KubeRay("kuberay", args("kuberay"), child)
        if on("kserve"):
            self.services["kserve"] = KServe(
                "kserve",
                args("kserve", *cert_manager),
                domain=config.ingress_domain,
                node_port_ingress=config.cluster == "kind",
                opts=child,
                public_gateway=config.gke is not None and config.gke.public_inference,
                gateway_source_ranges=config.gke.allowed_source_ranges if config.gke else (),
                gateway=config.gateway,
            )
        if on("prometheus"):
            # Its API is read by the canary analysis (kubectl canary, in-cluster from the workloads namespace).
            readers = (WORKLOADS_NAMESPACE, *((NAMESPACES["grafana"],) if on("grafana") else ()))
            # With components, the retraining trigger is deployed beside it (infra/use_cases/retrain_trigger.py).
            self.services["prometheus"] = Prometheus(
                "prometheus", args("prometheus", clients=readers), child, retraining=bool(config.components)
            )
        if on("grafana"):  # config refuses grafana without prometheus, its only data source
            self.services["grafana"] = Grafana("grafana", args("grafana"), NAMESPACES["prometheus"], child)
        self.register_outputs({name: svc.endpoints for name, svc in self.services.items()})
