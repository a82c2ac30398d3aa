"""KServe in Knative mode with Kourier as its networking layer.

The serving code rolls out canaries with ``canaryTrafficPercent``, which only Knative can split by request
(see ``serving/inference_service.py``). So this installs the Knative Operator, a ``KnativeServing`` with Kourier
(the light networking layer, no Istio) sized by the profile, then KServe's CRDs and controller.

The controller's chart is installed without its ``ClusterServingRuntime`` objects (``RUNTIME_KINDS``): KServe's chart
(checked at kserve/kserve@v0.16.0:charts/kserve-resources/templates/clusterservingruntimes.yaml) renders them with no
switch to leave them out (``servingruntime.<name>.disabled`` only sets ``spec.disabled``; the object is still
created), beside the ``clusterservingruntime.serving.kserve.io`` validating webhook (templates/
webhookconfiguration.yaml, ``failurePolicy: Fail``) served by the controller the same install starts. Pulumi orders a
chart's objects by CRD and namespace only, so on a first install they reach a webhook with no ready endpoint (the
same failure plain helm has: kserve#5037, #4182). The project needs none of them: its InferenceServices name their
own container (``predictor.containers``, ``infra/use_cases/manifests.py``), so the controller never looks a runtime
up. Helm's post-render step drops them from the rendered chart.
"""

from __future__ import annotations

import sys
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.cluster.kind import INGRESS_HTTPS_NODE_PORT, INGRESS_NODE_PORT
from infra.config import GatewaySecurity
from infra.profiles import Profile
from infra.services import inference_auth
from infra.services.base import PlatformService, ServiceArgs
from infra.services.cert_manager import gateway_issuer
from serving.inference_service import DEPLOYMENT_MODE

KNATIVE_NAMESPACE = "knative-serving"
# Where the pods that forward requests to model servers run: the activator and autoscaler always in knative-serving;
# the Kourier gateway there too when the Knative Operator installs it, in kourier-system with net-kourier's own
# release manifest. NetworkPolicies in the workloads namespace admit both.
KNATIVE_INGRESS_NAMESPACES = (KNATIVE_NAMESPACE, "kourier-system")
KNATIVE_REVISION_LABEL = "serving.knative.dev/revision"  # set by Knative on every revision's pods
# The gateway's fixed HTTP and HTTPS NodePorts on kind's node: the ports kind maps to the host (one definition there).
KOURIER_NODE_PORT = INGRESS_NODE_PORT
KOURIER_HTTPS_NODE_PORT = INGRESS_HTTPS_NODE_PORT
RUNTIME_KINDS = ("ClusterServingRuntime",)
"""Kinds dropped from the KServe controller chart's rendered objects (see the module docstring)."""

# Helm's post-renderer contract: the rendered manifests on stdin, the ones to apply on stdout. Documents are split on
# their ``---`` lines and the rest is passed through byte for byte; a document goes when its top-level ``kind`` (a
# line starting in column 0) is one of the kinds given as arguments.
_DROP_KINDS = r"""
import re, sys
kinds = set(sys.argv[1:])
docs = re.split(r"(?m)^---[ \t]*$", sys.stdin.read())
keep = [d for d in docs if not set(re.findall(r"(?m)^kind:[ \t]*[\"']?(\w+)", d)) & kinds]
sys.stdout.write("---".join(keep))
"""

# KnativeServing workload name -> (container, profile key): every Deployment the operator installs for Serving 1.19
# with Kourier (checked at knative/operator@knative-v1.19.0:cmd/operator/kodata/knative-serving/1.19.0/
# 2-serving-core.yaml, 3-serving-hpa.yaml -- autoscaler-hpa is installed although only the HPA autoscaling class uses
# it -- and cmd/operator/kodata/ingress/1.19/kourier/kourier.yaml). The activator, webhook and Kourier gateway carry
# upstream HPAs: there ``replicas`` is only the HPA's minimum (see ``infra/profiles.py``).
_WORKLOADS = {
    "activator": ("activator", "knative.activator"),
    "autoscaler": ("autoscaler", "knative.autoscaler"),
    "autoscaler-hpa": ("autoscaler-hpa", "knative.autoscaler-hpa"),
    "controller": ("controller", "knative.controller"),
    "webhook": ("webhook", "knative.webhook"),
    "3scale-kourier-gateway": ("kourier-gateway", "knative.kourier-gateway"),
    "net-kourier-controller": ("controller", "knative.kourier-controller"),
}


# The gateway Service's load balancer on GKE. The KnativeServing has no field for annotations or source ranges on
# Kourier's Service (spec.ingress.kourier: service-type, service-load-balancer-ip, http(s)-port, bootstrap-configmap),
# but spec.services[] merges labels, annotations and selector into a Service of that name (checked at
# knative/operator@knative-v1.19.0:pkg/apis/operator/base/{ingressconfiguration,common}.go and
# pkg/reconciler/common/services_override.go). GKE's service controller reads both annotations (checked at
# kubernetes/cloud-provider-gcp@ccm/v34.2.0:providers/gce/gce_annotations.go, gce_loadbalancer_{internal,external}.go
# and vendor/k8s.io/cloud-provider/service/helpers/helper.go: spec.loadBalancerSourceRanges, else this annotation).
KOURIER_SERVICE = "kourier"
INTERNAL_LB_ANNOTATION = "networking.gke.io/load-balancer-type"
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"


def gateway_annotations(public: bool, source_ranges: tuple[str, ...]) -> dict[str, str]:
    """Annotations of Kourier's LoadBalancer Service: internal unless public; the admitted ranges when given."""
    annotations = {} if public else {INTERNAL_LB_ANNOTATION: "Internal"}
    if source_ranges:
        annotations[SOURCE_RANGES_ANNOTATION] = ",".join(source_ranges)
    return annotations


# TLS of the model endpoints (checked at knative/serving@knative-v1.19.0): config-network's ``external-domain-tls``
# (vendor/knative.dev/networking/pkg/config/config.go; the older ``auto-tls`` is its alias) makes Knative request a
# certificate per external host of the ``certificate-class`` given, cert-manager's being its default; the serving
# controller runs that certificate reconciler itself (cmd/controller/main.go: enabled when config-network asks for
# it at start, once cert-manager's CRDs exist; the net-certmanager controller was merged into Serving) and takes the
# issuer from config-certmanager's ``issuerRef`` (pkg/reconciler/certificate/config/cert_manager.go, a YAML
# ObjectReference). ``http-protocol`` Redirected answers plain HTTP with a redirect to HTTPS (Enabled serves both).
# The Knative Operator ships config-certmanager and the controller's RBAC on cert-manager.io (knative/operator@
# knative-v1.19.0:cmd/operator/kodata/knative-serving/1.19.0/2-serving-core.yaml).
CERTIFICATE_CLASS = "cert-manager.certificate.networking.knative.dev"
DEFAULT_GATEWAY = GatewaySecurity()
"""The config's defaults: the stack's own CA, keys checked."""


def tls_config(issuer: str, redirect_http: bool) -> dict[str, dict[str, str]]:
    """``spec.config`` entries for HTTPS hosts with certificates from the ClusterIssuer ``issuer``."""
    return {
        "network": {
            "external-domain-tls": "Enabled",
            "certificate-class": CERTIFICATE_CLASS,
            "http-protocol": "Redirected" if redirect_http else "Enabled",
        },
        "certmanager": {"issuerRef": f"kind: ClusterIssuer\nname: {issuer}\n"},
    }


def knative_serving(
    profile: Profile,
    domain: str,
    node_port: bool,
    public: bool = False,
    source_ranges: tuple[str, ...] = (),
    gateway: GatewaySecurity = DEFAULT_GATEWAY,
) -> dict[str, Any]:
    """The ``KnativeServing`` custom resource: Kourier ingress, the domain, and every workload sized.

    ``node_port`` (kind): the operator makes its Kourier gateway Service a NodePort on ``KOURIER_NODE_PORT``, the port
    kind maps to the host (``http-port`` is the node port of every non-https port; checked at
    knative/operator@knative-v1.19.0:pkg/apis/operator/base/ingressconfiguration.go and
    pkg/reconciler/knativeserving/ingress/kourier.go). ``spec.config`` becomes the ``config-<key>`` ConfigMaps
    (pkg/reconciler/common/config_maps.go there); ``config-features`` is left at Knative's defaults, under which a
    revision's pod may carry no pod-level ``securityContext`` (see ``infra/use_cases/manifests.py``).

    Otherwise (GKE) the gateway is a LoadBalancer, internal unless ``public``, admitting ``source_ranges`` when given
    (``gateway_annotations``; infra/config.py requires them when public).

    Both serve HTTPS with certificates of ``gateway``'s issuer (``tls_config``); GKE redirects plain HTTP to it, kind
    keeps serving it on the host port too (its port is bound to 127.0.0.1). With ``gateway.auth`` Kourier asks the
    key check about every request (``inference_auth.kourier_config``).
    """
    kourier: dict[str, Any] = (
        {
            "enabled": True,
            "service-type": "NodePort",
            "http-port": KOURIER_NODE_PORT,
            "https-port": KOURIER_HTTPS_NODE_PORT,
        }
        if node_port
        else {"enabled": True, "service-type": "LoadBalancer"}
    )
    services: dict[str, Any] = (
        {}
        if node_port
        else {"services": [{"name": KOURIER_SERVICE, "annotations": gateway_annotations(public, source_ranges)}]}
    )
    tls = tls_config(gateway_issuer(gateway), redirect_http=not node_port)
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
                **tls,
                "network": {"ingress-class": "kourier.ingress.networking.knative.dev", **tls["network"]},
                "domain": {domain: ""},
                **({"kourier": inference_auth.kourier_config()} if gateway.auth else {}),
            },
            "high-availability": {"replicas": 1},
            "workloads": workloads,
            **services,
        },
    }


def controller_values(profile: Profile, domain: str) -> dict[str, Any]:
    """Values of KServe's controller chart (checked at kserve/kserve@v0.16.0:charts/kserve-resources/values.yaml).

    The controller pod has two containers, ``manager`` and the ``kube-rbac-proxy`` the chart always adds in front of
    its metrics (templates/deployment.yaml, sized by ``kserve.controller.rbacProxy.resources``, 100m/300Mi by
    default); both are sized by the profile so its total counts the whole pod.
    """
    return {
        "kserve": {
            "controller": {
                "deploymentMode": DEPLOYMENT_MODE,
                "resources": profile["kserve.controller"].resources(),
                "rbacProxy": {"resources": profile["kserve.rbac-proxy"].resources()},
                "gateway": {"domain": domain, "disableIstioVirtualHost": True},
            }
        }
    }


def drop_kinds_command(kinds: tuple[str, ...] = RUNTIME_KINDS) -> list[str]:
    """The post-renderer's command line: this interpreter (it runs the program, so it exists) and the filter."""
    return [sys.executable, "-c", _DROP_KINDS, *kinds]


class KServe(PlatformService):
    """Knative Operator -> KnativeServing (Kourier) -> KServe CRDs -> KServe controller (Knative mode)."""

    kind = "KServe"

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        domain: str,
        node_port_ingress: bool,
        opts: pulumi.ResourceOptions | None = None,
        public_gateway: bool = False,
        gateway_source_ranges: tuple[str, ...] = (),
        gateway: GatewaySecurity = DEFAULT_GATEWAY,
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
            knative_serving(args.profile, domain, node_port_ingress, public_gateway, gateway_source_ranges, gateway),
            depends_on=[self.knative_operator, self.serving_namespace],
        )
        if gateway.auth:
            # Until the check answers, the gateway refuses every request (failure mode deny), never lets one through.
            auth = inference_auth.auth_objects(args.profile, KNATIVE_INGRESS_NAMESPACES)
            namespace = self.register("auth-namespace", auth.pop("auth-namespace"))
            for role, manifest in auth.items():
                self.register(role, manifest, depends_on=[namespace])
        self.crds = self.chart("crds", versions.KSERVE_CRD, {})
        command, *command_args = drop_kinds_command()
        self.controller = self.chart(
            "controller",
            versions.KSERVE,
            controller_values(args.profile, domain),
            depends_on=[self.crds, self.knative_serving, *args.depends_on],
            post_renderer=k8s.helm.v4.PostRendererArgs(command=command, args=command_args),
        )
        self.done(
            {
                "version": versions.KSERVE.version,
                "knative_version": versions.KNATIVE_VERSION,
                "domain": domain,
                "deployment_mode": DEPLOYMENT_MODE,
                "tlsIssuer": gateway_issuer(gateway),
                **({"inferenceKeysNamespace": inference_auth.NAMESPACE} if gateway.auth else {}),
            }
        )
