"""A local kind cluster, through a Pulumi dynamic provider around the kind CLI.

``create`` runs the preflight checks against the stack's profile and ports, then ``kind create cluster`` with a config
that maps the Knative ingress's HTTP and HTTPS NodePorts to host ports on 127.0.0.1, and returns the cluster's
kubeconfig as a secret output. A cluster of that name that already exists (a retried ``up`` after a failure, or state
lost) is adopted: the checks of what a new cluster needs (memory, CPU, the ports its own mappings hold) are skipped
then. ``delete`` runs ``kind delete cluster``. Changing the node image, a port or the name replaces the cluster (a
node's port mappings are fixed when kind creates it); the profile is only read by the preflight.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

from infra.cluster.base import Cluster
from infra.config import KindSettings
from infra.profiles import LAPTOP, PROFILES, Profile

# Kourier's gateway Service is pinned to these NodePorts (infra.services.kserve sets them in the KnativeServing).
INGRESS_NODE_PORT = 31080
INGRESS_HTTPS_NODE_PORT = 31443
REPLACE_ON = ("name", "node_image", "http_port", "https_port")


def kind_config(http_port: int, https_port: int) -> str:
    """The kind cluster config: one node, the ingress's HTTP and HTTPS NodePorts reachable on the host's
    ``http_port`` and ``https_port``, on 127.0.0.1 only (fields checked at kubernetes-sigs/kind@v0.30.0:
    pkg/apis/config/v1alpha4/types.go, ``PortMapping``)."""
    mappings = "".join(
        f"      - containerPort: {node_port}\n"
        f"        hostPort: {host_port}\n"
        "        listenAddress: 127.0.0.1\n"
        "        protocol: TCP\n"
        for node_port, host_port in ((INGRESS_NODE_PORT, http_port), (INGRESS_HTTPS_NODE_PORT, https_port))
    )
    return (
        "kind: Cluster\n"
        "apiVersion: kind.x-k8s.io/v1alpha4\n"
        "nodes:\n"
        "  - role: control-plane\n"
        "    extraPortMappings:\n"
        f"{mappings}"
    )


def _settings(props: dict[str, Any]) -> KindSettings:
    return KindSettings(
        name=str(props["name"]),
        node_image=str(props["node_image"]),
        http_port=int(props["http_port"]),
        https_port=int(props["https_port"]),
    )


def _kind(*args: str) -> str:
    try:
        result = subprocess.run(["kind", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError("kind not found: install it (`go install sigs.k8s.io/kind@v0.30.0`)") from None
    if result.returncode != 0:
        raise RuntimeError(f"kind {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


class KindProvider(ResourceProvider):
    """Creates and deletes kind clusters. Inputs: ``name``, ``node_image``, ``http_port``, ``https_port``, ``profile``
    (the name of the resource profile the preflight checks memory and CPU against).

    Pulumi pickles the provider by reference to this module; the provider process imports it from the main
    environment, where ``make setup`` installs the project (editable), so ``infra`` imports from any directory.
    """

    def create(self, props: dict[str, Any]) -> CreateResult:
        from infra.cluster import preflight  # imported here: the provider runs in its own process

        settings = _settings(props)
        name = settings.name
        exists = preflight.kind_cluster_exists(name)
        profile = PROFILES.get(str(props.get("profile") or LAPTOP.name), LAPTOP)
        problems = preflight.problems(settings.host_ports, profile, cluster_exists=exists)
        if problems:
            raise RuntimeError("preflight failed:\n  " + "\n  ".join(problems))
        if not exists:
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "kind.yaml"
                config.write_text(kind_config(settings.http_port, settings.https_port))
                _kind("create", "cluster", "--name", name, "--image", str(props["node_image"]),
                      "--config", str(config), "--wait", "180s")  # fmt: skip
        kubeconfig = _kind("get", "kubeconfig", "--name", name)
        return CreateResult(id_=name, outs={**props, "kubeconfig": kubeconfig})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in REPLACE_ON if str(olds.get(key)) != str(news.get(key))]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _kind("delete", "cluster", "--name", str(props["name"]))


class KindCluster(pulumi.dynamic.Resource, module="mlstack", name="KindCluster"):
    """A kind cluster; ``kubeconfig`` is a secret output."""

    kubeconfig: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        settings: KindSettings,
        profile: Profile = LAPTOP,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "name": settings.name,
            "node_image": settings.node_image,
            "http_port": settings.http_port,
            "https_port": settings.https_port,
            "profile": profile.name,
            "kubeconfig": None,
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["kubeconfig"]))
        super().__init__(KindProvider(), resource_name, props, opts)


def kind_cluster(settings: KindSettings, profile: Profile = LAPTOP) -> Cluster:
    """Provision the kind cluster (its preflight checks ``profile``) and the Kubernetes provider bound to it."""
    cluster = KindCluster("kind", settings, profile)
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(cluster.kubeconfig)
    provider = k8s.Provider(
        "kind-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(depends_on=[cluster]),
    )
    return Cluster(
        name=cluster.name,
        kubeconfig=kubeconfig,
        provider=provider,
        ingress_url=pulumi.Output.from_input(f"http://127.0.0.1:{settings.http_port}"),
        resources=(cluster,),
        ingress_https_url=pulumi.Output.from_input(f"https://127.0.0.1:{settings.https_port}"),
    )
