"""A regional GKE cluster with one autoscaling-free node pool, through the Pulumi GCP provider.

The kubeconfig authenticates with ``gke-gcloud-auth-plugin`` (the user's or CI's gcloud credentials), so no
long-lived credential is written to the state; it is a secret output all the same, since it names the endpoint and
CA. Workload Identity is on, legacy metadata endpoints are off, and nodes use Shielded VMs.
"""

from __future__ import annotations

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


def gke_cluster(settings: GkeSettings, stack: str) -> Cluster:
    """Provision the GKE cluster, its node pool and the Kubernetes provider bound to it."""
    gcp_provider = gcp.Provider("gcp", project=settings.project, region=settings.region)
    opts = pulumi.ResourceOptions(provider=gcp_provider)
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
        opts=opts,
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
        ingress_url=pulumi.Output.from_input(f"http://<address of: kubectl -n {KNATIVE_NAMESPACE} get svc kourier>"),
        resources=(cluster, pool),
    )
