"""cert-manager: certificates for the operators' admission webhooks (Flink operator, KServe)."""

from __future__ import annotations

import json

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs

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
                # The API check is a small client like the webhook; a Job that finishes before the workloads
                # start, so it is sized but not counted in the profile's totals.
                "startupapicheck": {"enabled": True, "resources": webhook.resources()},
                "global": {"leaderElection": {"namespace": args.namespace}},
            },
            values_yaml=json.dumps(API_CHECK_WITHOUT_HOOKS),
        )
        self.done({"version": versions.CERT_MANAGER.version})
