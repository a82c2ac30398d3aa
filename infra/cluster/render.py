"""Render mode's "cluster": none. The Kubernetes provider writes every object as YAML into a folder instead of
sending it to an API server, so the real engine and provider can be exercised where no cluster can run."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster.base import Cluster


def render_cluster(directory: str) -> Cluster:
    provider = k8s.Provider("render", render_yaml_to_directory=directory)
    return Cluster(
        name=pulumi.Output.from_input("render"),
        kubeconfig=pulumi.Output.secret(""),
        provider=provider,
        ingress_url=pulumi.Output.from_input(""),
        resources=(),
    )
