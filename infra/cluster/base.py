"""What every cluster hands to the platform."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Cluster:
    """A provisioned cluster."""

    name: pulumi.Output[str]
    """Cluster name."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig for the cluster (a secret output)."""
    provider: k8s.Provider
    """The Kubernetes provider every platform resource is created with."""
    ingress_url: pulumi.Output[str]
    """Where the Knative ingress (InferenceService traffic) is reached from the user's machine."""
    resources: tuple[pulumi.Resource, ...]
    """The cluster's own resources, for ``depends_on``."""
    ingress_https_url: pulumi.Output[str] | None = None
    """The ingress's HTTPS address where it also serves plain HTTP (kind); None where ``ingress_url`` is HTTPS."""
