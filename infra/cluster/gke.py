"""A regional GKE cluster with one autoscaling-free node pool, through the Pulumi GCP provider.

The kubeconfig authenticates with ``gke-gcloud-auth-plugin`` (the user's or CI's gcloud credentials), so no
long-lived credential is written to the state; it is a secret output all the same, since it names the endpoint and
CA. Workload Identity is on, legacy metadata endpoints are off, and nodes use Shielded VMs.

The control plane answers only the networks in ``mlstack:controlPlaneAuthorizedNetworks`` (master authorized
networks; Google's own public addresses are not let in), and nodes are private by default (internal addresses only,
egress through a Cloud NAT the stack creates so images still pull). Fields checked in the installed pulumi-gcp 10.2.0
(``pulumi_gcp/container/_inputs.py``: ``ClusterMasterAuthorizedNetworksConfigArgsDict``,
``ClusterPrivateClusterConfigArgsDict``); see infra/UPSTREAM-CHECKS.md, GKE.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra.cluster.base import Cluster
from infra.config import GkeSettings
from infra.services.kserve import KNATIVE_NAMESPACE


def kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for the cluster that authenticates through ``gke-gcloud-auth-plugin``."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    certificate-authority-data: {ca_certificate}
    server: https://{endpoint}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)
      provideClusterInfo: true
"""


def access_args(settings: GkeSettings) -> dict[str, Any]:
    """The cluster's access arguments: authorized networks always; private nodes (VPC-native, public endpoint kept
    for the authorized networks) when asked. pulumi-gcp advises omitting ``private_cluster_config`` entirely when
    ``enable_private_nodes`` is false (its docstring there), so it is left out then."""
    args: dict[str, Any] = {
        "master_authorized_networks_config": {
            "cidr_blocks": [
                {"cidr_block": c, "display_name": f"mlstack-{i}"} for i, c in enumerate(settings.authorized_networks)
            ],
            "gcp_public_cidrs_access_enabled": False,
        }
    }
    if settings.private_nodes:
        args["private_cluster_config"] = {"enable_private_nodes": True, "enable_private_endpoint": False}
        args["ip_allocation_policy"] = {}  # private nodes need a VPC-native cluster; {} lets GKE pick the ranges
    return args


def gke_cluster(settings: GkeSettings, stack: str) -> Cluster:
    """Provision the GKE cluster, its node pool and the Kubernetes provider bound to it."""
    gcp_provider = gcp.Provider("gcp", project=settings.project, region=settings.region)
    opts = pulumi.ResourceOptions(provider=gcp_provider)
    egress: list[pulumi.Resource] = []
    if settings.private_nodes:
        # Private nodes have no external address: Cloud NAT gives them egress to pull images from public registries.
        router = gcp.compute.Router("gke-router", network="default", region=settings.region, opts=opts)
        egress = [
            router,
            gcp.compute.RouterNat(
                "gke-nat",
                router=router.name,
                region=settings.region,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                opts=opts,
            ),
        ]
    cluster = gcp.container.Cluster(
        "gke",
        name=f"mlstack-{stack}",
        location=settings.region,
        min_master_version=settings.kubernetes_version,
        release_channel={"channel": "REGULAR"},
        remove_default_node_pool=True,
        initial_node_count=1,
        deletion_protection=False,
        workload_identity_config={"workload_pool": f"{settings.project}.svc.id.goog"},
        network_policy={"enabled": True, "provider": "CALICO"},
        addons_config={"network_policy_config": {"disabled": False}},
        **access_args(settings),
        opts=opts,
    )
    pool = gcp.container.NodePool(
        "gke-nodes",
        cluster=cluster.name,
        location=settings.region,
        node_count=settings.node_count,
        node_config={
            "machine_type": settings.machine_type,
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
            "labels": {"mlstack-io-stack": stack},
        },
        management={"auto_repair": True, "auto_upgrade": True},
        opts=pulumi.ResourceOptions(provider=gcp_provider, depends_on=egress),
    )
    config: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
            lambda args: kubeconfig(str(args[0]), str(args[1]), str(args[2]))
        )
    )
    provider = k8s.Provider(
        "gke-k8s",
        kubeconfig=config,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(depends_on=[pool]),
    )
    return Cluster(
        name=cluster.name,
        kubeconfig=config,
        provider=provider,
        # Kourier gets a LoadBalancer on GKE; its address exists only once Google assigns it, so say where to read it.
        # HTTPS: the gateway answers plain HTTP with a redirect to it (infra.services.kserve.tls_config).
        ingress_url=pulumi.Output.from_input(f"https://<address of: kubectl -n {KNATIVE_NAMESPACE} get svc kourier>"),
        resources=(*egress, cluster, pool),
    )
