"""The whole stack: the configured cluster, then the platform on it, and the outputs users need."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.cluster.base import Cluster
from infra.config import StackConfig
from infra.services import Platform
from infra.use_cases import UseCase, build_use_cases


@dataclass(frozen=True)
class Stack:
    """What the program built."""

    cluster: Cluster
    platform: Platform
    use_cases: dict[str, UseCase]
    outputs: dict[str, pulumi.Output[object]]


def build(config: StackConfig, stack_name: str) -> Stack:
    """Provision the cluster and the platform described by ``config``."""
    if config.render_dir:
        from infra.cluster.render import render_cluster

        cluster = render_cluster(config.render_dir)
    elif config.kind is not None:
        from infra.cluster.kind import kind_cluster

        cluster = kind_cluster(config.kind, config.profile)
    else:
        from infra.cluster.gke import gke_cluster

        assert config.gke is not None
        cluster = gke_cluster(config.gke, stack_name)
    platform = Platform(
        "platform", config, cluster.provider, pulumi.ResourceOptions(depends_on=list(cluster.resources))
    )
    use_cases = build_use_cases(config, platform, cluster.provider, list(cluster.resources))
    outputs: dict[str, pulumi.Output[object]] = {
        "cluster": pulumi.Output.from_input(config.cluster),
        "profile": pulumi.Output.from_input(config.profile.name),
        "kubeconfig": pulumi.Output.secret(cluster.kubeconfig),
        "ingressUrl": pulumi.Output.from_input(cluster.ingress_url),
    }
    if cluster.ingress_https_url is not None:
        outputs["ingressHttpsUrl"] = pulumi.Output.from_input(cluster.ingress_https_url)
    if platform.left_out is not None:
        outputs["renderLeftOut"] = pulumi.Output.from_input(platform.left_out)
    for name, service in platform.services.items():
        for key, value in service.endpoints.items():
            outputs[_camel(f"{name}_{key}")] = pulumi.Output.from_input(value)
    for name, use_case in use_cases.items():
        for key, value in use_case.endpoints.items():
            outputs[_camel(f"{name}_{key}")] = value
    return Stack(cluster=cluster, platform=platform, use_cases=use_cases, outputs=outputs)


def _camel(name: str) -> str:
    parts = name.replace("-", "_").split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def export(stack: Stack) -> None:
    for key, value in stack.outputs.items():
        pulumi.export(key, value)
