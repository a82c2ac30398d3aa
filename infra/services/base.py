"""What every platform service (a Pulumi ComponentResource) shares: its args, its namespace, child options and chart
helper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.profiles import Profile
from infra.services import objects
from infra.versions import HelmChart, Kustomization

WORKLOADS_NAMESPACE = "mlstack"
"""Where the use-case components' workloads run: Flink jobs, RayJobs, InferenceServices."""


@dataclass(frozen=True)
class ServiceArgs:
    """Arguments every platform service takes."""

    provider: k8s.Provider
    """Kubernetes provider of the target cluster."""
    profile: Profile
    """Resource profile (requests, limits, replicas, storage)."""
    namespace: str
    """Namespace the service's own resources go to (created by the service unless upstream creates it)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist first (operators and CRDs of other services, e.g. cert-manager)."""
    clients: Sequence[str] = field(default_factory=tuple)
    """Namespaces whose pods may reach this service (NetworkPolicies allow exactly these, plus its own)."""
    left_out: list[str] | None = None
    """Render mode (no cluster, no network): upstream charts and kustomizations are not fetched but listed here,
    each replaced by an empty placeholder so what depends on it keeps its order. None outside render mode."""


class PlatformService(pulumi.ComponentResource):
    """Base of the platform's services (Pulumi ComponentResources): creates the namespace and hands out child options.

    Subclasses set ``kind``, build their resources in ``__init__`` and end with ``self.done(outputs)``.
    """

    kind = "Service"
    endpoints: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        args: ServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        create_namespace: bool = True,
        namespace_labels: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"mlstack:platform:{self.kind}", name, None, opts)
        self.name = name
        self.args = args
        self.endpoints = {}
        self.namespace: pulumi.Resource | None = None
        if create_namespace:
            self.namespace = self.register(
                "namespace", objects.namespace(args.namespace, namespace_labels), depends_on=list(args.depends_on)
            )

    def options(self, depends_on: Sequence[pulumi.Resource] = (), **kwargs: Any) -> pulumi.ResourceOptions:
        """Options for a child: parented here, on the cluster's provider, after the namespace and ``depends_on``."""
        deps = [*([self.namespace] if self.namespace is not None else []), *depends_on]
        return pulumi.ResourceOptions(parent=self, provider=self.args.provider, depends_on=deps, **kwargs)

    def register(
        self, role: str, manifest: objects.Manifest, depends_on: Sequence[pulumi.Resource] = (), **kwargs: Any
    ) -> pulumi.CustomResource:
        """Register a manifest as the child ``<name>-<role>``."""
        if role == "namespace":  # the namespace itself cannot depend on itself
            opts = pulumi.ResourceOptions(parent=self, provider=self.args.provider, depends_on=list(depends_on))
        else:
            opts = self.options(depends_on, **kwargs)
        return objects.register(f"{self.name}-{role}", manifest, opts)

    def chart(
        self,
        role: str,
        chart: HelmChart,
        values: dict[str, Any],
        depends_on: Sequence[pulumi.Resource] = (),
        namespace: str | None = None,
        post_renderer: k8s.helm.v4.PostRendererArgs | None = None,
        values_yaml: str = "",
    ) -> pulumi.Resource:
        """An upstream chart at its pinned version, fetched at deploy time; ``post_renderer`` edits the render.

        ``values_yaml`` is a values file merged under ``values``: the only way to hand Helm an explicit ``null``
        (which deletes a chart default), since the Python SDK drops ``None`` map values before they reach the
        provider (pulumi/pulumi-kubernetes@v4.30.0 CHANGELOG, #4293).
        """
        if self.args.left_out is not None:
            return self._left_out(role, f"helm chart {chart.chart} {chart.version}")
        return k8s.helm.v4.Chart(
            f"{self.name}-{role}",
            k8s.helm.v4.ChartArgs(
                chart=chart.chart,
                # A chart archive URL names its version itself; helm takes --version only for repo and OCI charts.
                version=None if chart.chart.startswith("https://") else chart.version,
                repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
                namespace=namespace or self.args.namespace,
                values=values,
                value_yaml_files=[pulumi.StringAsset(values_yaml)] if values_yaml else None,
                post_renderer=post_renderer,
            ),
            opts=self.options(depends_on),
        )

    def kustomization(
        self, role: str, source: Kustomization, depends_on: Sequence[pulumi.Resource] = ()
    ) -> pulumi.Resource:
        """An upstream kustomization at its pinned tag, fetched at deploy time."""
        if self.args.left_out is not None:
            return self._left_out(role, f"kustomization {source.url}")
        return k8s.kustomize.v2.Directory(
            f"{self.name}-{role}",
            k8s.kustomize.v2.DirectoryArgs(directory=source.url),
            opts=self.options(depends_on),
        )

    def _left_out(self, role: str, what: str) -> pulumi.Resource:
        assert self.args.left_out is not None
        self.args.left_out.append(f"{self.name}-{role}: {what}")
        return pulumi.ComponentResource("mlstack:render:LeftOut", f"{self.name}-{role}", None, self.options())

    def done(self, endpoints: dict[str, pulumi.Input[str]]) -> None:
        self.endpoints = {k: pulumi.Output.from_input(v) for k, v in endpoints.items()}
        self.register_outputs(dict(self.endpoints))


def port_forward(namespace: str, service: str, local: int, remote: int, path: str = "") -> str:
    """How a user reaches a cluster-internal UI from their machine."""
    return f"kubectl -n {namespace} port-forward svc/{service} {local}:{remote}  ->  http://127.0.0.1:{local}{path}"
