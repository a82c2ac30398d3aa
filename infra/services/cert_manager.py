"""cert-manager: certificates for the operators' admission webhooks (Flink operator, KServe) and the ClusterIssuer
of the inference gateway's HTTPS hosts (``gateway_issuer``; Knative asks it through ``config-certmanager``)."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra import versions
from infra.config import GatewaySecurity
from infra.services.base import PlatformService, ServiceArgs

# The gateway's issuers (fields checked at cert-manager/cert-manager@v1.19.1: deploy/crds/cert-manager.io_
# clusterissuers.yaml, cert-manager.io_certificates.yaml). A CA ClusterIssuer reads its key pair from the cluster
# resource namespace, which the chart sets to cert-manager's own (templates/deployment.yaml:
# --cluster-resource-namespace=$(POD_NAMESPACE)), so the CA's Certificate lives there. ACME solves HTTP-01 with an
# empty ingress solver, as Knative's own test issuer does (knative/serving@knative-v1.19.0:test/config/
# externaldomaintls/certmanager/http01/issuer.yaml): Knative routes the challenge path through Kourier itself.
SELF_SIGNED = "mlstack-selfsigned"
GATEWAY_CA = "mlstack-gateway-ca"
"""The stack's CA (tlsIssuer self-signed): ClusterIssuer and Secret name; callers trust its ``ca.crt``."""
ACME = "mlstack-acme"
CERT_MANAGER_API = "cert-manager.io/v1"


def gateway_issuer(gateway: GatewaySecurity) -> str:
    """The ClusterIssuer Knative's certificates come from."""
    return {"self-signed": GATEWAY_CA, "acme": ACME}.get(gateway.tls_issuer, gateway.cluster_issuer)


def issuer_objects(gateway: GatewaySecurity, namespace: str) -> dict[str, dict[str, Any]]:
    """What the stack creates for ``gateway_issuer``: a self-signed root, the CA it signs and the CA's issuer; or
    the ACME issuer; nothing for a provided one."""

    def cluster_issuer(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": CERT_MANAGER_API, "kind": "ClusterIssuer", "metadata": {"name": name}, "spec": spec}

    if gateway.tls_issuer == "self-signed":
        return {
            "selfsigned-issuer": cluster_issuer(SELF_SIGNED, {"selfSigned": {}}),
            "gateway-ca": {
                "apiVersion": CERT_MANAGER_API,
                "kind": "Certificate",
                "metadata": {"name": GATEWAY_CA, "namespace": namespace},
                "spec": {
                    "isCA": True,
                    "commonName": "mlstack inference gateway CA",
                    "secretName": GATEWAY_CA,
                    "duration": "8760h",  # a year; cert-manager renews it at two thirds
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                    "issuerRef": {"name": SELF_SIGNED, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                },
            },
            "gateway-ca-issuer": cluster_issuer(GATEWAY_CA, {"ca": {"secretName": GATEWAY_CA}}),
        }
    if gateway.tls_issuer == "acme":
        acme = {
            "server": gateway.acme_server,
            "email": gateway.acme_email,
            "privateKeySecretRef": {"name": f"{ACME}-account"},
            "solvers": [{"http01": {"ingress": {}}}],
        }
        return {"acme-issuer": cluster_issuer(ACME, {"acme": acme})}
    return {}


# The chart's API check (a Job running `check api` until the webhook serves with its CA injected, plus its
# ServiceAccount, Role and RoleBinding) is a set of post-install Helm hooks: the chart's defaults annotate them with
# `helm.sh/hook` through `startupapicheck.jobAnnotations`, `startupapicheck.rbac.annotations` and
# `startupapicheck.serviceAccount.annotations`, and the templates write those maps as the objects' annotations
# only when set (checked at cert-manager/cert-manager@v1.19.1: deploy/charts/cert-manager/values.yaml,
# templates/startupapicheck-job.yaml, startupapicheck-rbac.yaml, startupapicheck-serviceaccount.yaml).
# helm.v4.Chart renders with hooks disabled, so by default the check never runs (pulumi/pulumi-kubernetes@v4.32.0:
# provider/pkg/provider/helm/v4/chart.go, `cmd.DisableHooks = true`; 4.34.2's `include_hooks` applies to render
# mode only). Deleting the three defaults with explicit nulls makes the check ordinary chart resources: the
# provider awaits a Job until it completes (provider/pkg/await/job.go), the Chart's construction waits for its
# children, so whatever depends on the chart starts only once cert-manager's webhook answers. An empty map would
# not do: Helm merges it with the defaults and keeps the hook annotations. The nulls go in a values file because
# the Python SDK drops inline None map values (pulumi/pulumi-kubernetes@v4.30.0 CHANGELOG, #4293); JSON is YAML.
API_CHECK_WITHOUT_HOOKS = {
    "startupapicheck": {
        "jobAnnotations": None,
        "rbac": {"annotations": None},
        "serviceAccount": {"annotations": None},
    }
}


class CertManager(PlatformService):
    """cert-manager from its upstream chart, CRDs included; ready (``release``) once its API check Job passed."""

    kind = "CertManager"

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
        gateway: GatewaySecurity | None = None,
    ) -> None:
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
                # The API check is a small client like the webhook; a Job that finishes before the workloads
                # start, so it is sized but not counted in the profile's totals.
                "startupapicheck": {"enabled": True, "resources": webhook.resources()},
                "global": {"leaderElection": {"namespace": args.namespace}},
            },
            values_yaml=json.dumps(API_CHECK_WITHOUT_HOOKS),
        )
        # The chart counts as ready once its webhook serves (see above), which admits these.
        self.issuers = [
            self.register(role, manifest, depends_on=[self.release])
            for role, manifest in (issuer_objects(gateway, args.namespace) if gateway else {}).items()
        ]
        self.done(
            {
                "version": versions.CERT_MANAGER.version,
                **({"gatewayIssuer": gateway_issuer(gateway)} if gateway else {}),
            }
        )
