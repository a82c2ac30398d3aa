"""KubeRay: the operator, and the Ray cluster the training pipelines' searches run on.

Why a long-lived ``RayCluster`` and not a ``RayJob`` per run: the search step already submits its search through
the Ray Jobs API to a ``ray_address`` (``pipelines/training/remote_search.py``: ships the splits as the job's
working directory, follows the job, reads the result from its logs), the supported way to run Tune remotely (the
Ray Client is not). A standing cluster needs only its address in the run's parameters; a ``RayJob`` per run would add
a Kubernetes client, RBAC and the custom resource's lifecycle to the step, and the splits would have to travel
through the object store instead of the Jobs API's upload. The price is the idle cluster's requests, counted in the
profiles (``kuberay.head``, ``kuberay.worker``).

Fields follow KubeRay v1.4.2 (``infra/versions.py``): checked at ray-project/kuberay@v1.4.2:
ray-operator/config/crd/bases/ray.io_rayclusters.yaml and ray-operator/apis/ray/v1/raycluster_types.go (``ray.io/v1``;
``headGroupSpec`` requires ``template``; a worker group requires ``groupName``, ``minReplicas``, ``maxReplicas``,
``template``; ``rayStartParams`` is a string map), and ray-operator/controllers/ray/common/pod.go, service.go and
utils/constant.go for what the operator adds (see ``infra/UPSTREAM-CHECKS.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.profiles import Profile, Sizing
from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs

SEARCH_CLUSTER = "mlstack-search"
"""The RayCluster's name (KubeRay allows at most 53 characters: utils/constant.go ``MaxRayClusterNameLength``)."""
RAY_VERSION = "2.60.0"
"""Ray in the pipeline image (``requirements/main.txt``); the Jobs API needs the same Ray on both ends."""
APP_UID = 10001  # the mlstack user of images/pipeline
# Ports of the head (names and numbers as KubeRay's defaults: utils/constant.go ``GcsServerPortName``/
# ``DefaultGcsServerPort``, ``DashboardPortName``/``DefaultDashboardPort``, ``MetricsPortName``/``DefaultMetricsPort``).
# The head Service KubeRay creates exposes exactly the head container's ports (common/service.go
# ``getPortsFromCluster``); the Ray Client's 10001 is left out: nothing here uses it.
GCS_PORT = 6379
DASHBOARD_PORT = 8265  # the dashboard, which serves the Jobs API
METRICS_PORT = 8080
AGENT_PORT = 52365  # the dashboard agent on every node (``DefaultDashboardAgentListenPort``), its health endpoints
HEAD_LABELS = {"ray.io/cluster": SEARCH_CLUSTER, "ray.io/node-type": "head"}
"""Labels KubeRay puts on the head pod (common/pod.go ``labelPod``; not overridable by the template)."""


def search_address(namespace: str) -> str:
    """The Jobs API of the search cluster: KubeRay names the head Service ``<cluster>-head-svc``
    (utils/util.go ``GenerateHeadServiceName``)."""
    return f"http://{SEARCH_CLUSTER}-head-svc.{namespace}.svc.cluster.local:{DASHBOARD_PORT}"


def _http_probe(port: int, path: str, timeout_s: int, initial_delay_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": initial_delay_s,
        "timeoutSeconds": timeout_s,
        "periodSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": failures,
    }


def _ray_container(name: str, image: str, size: Sizing, head: bool) -> dict[str, Any]:
    """The Ray container: KubeRay writes its command (``ray start``) itself; our probes replace its defaults.

    KubeRay only injects probes where none are set (common/pod.go ``initLivenessAndReadinessProbe``), and its own
    run ``wget``, which the pipeline image (python slim) lacks. These call the same endpoints over HTTP: the
    dashboard's ``/api/gcs_healthz`` (head readiness: the Jobs API is up and GCS alive) and the agent's
    ``/api/healthz`` (raylet, and GCS on the head), both 503 when unhealthy; timings are KubeRay's defaults.
    """
    ports = {"gcs-server": GCS_PORT, "dashboard": DASHBOARD_PORT, "metrics": METRICS_PORT} if head else None
    # /tmp: Ray's temp dir (/tmp/ray), the jobs' working directories and HOME; the root file system stays read-only.
    container = objects.container(name, image, size, ports=ports, mounts=[{"name": "tmp", "mountPath": "/tmp"}])
    timeout = 5 if head else 2
    ready = (DASHBOARD_PORT, "/api/gcs_healthz") if head else (AGENT_PORT, "/api/healthz")
    container["readinessProbe"] = _http_probe(*ready, timeout_s=timeout, initial_delay_s=10, failures=10)
    container["livenessProbe"] = _http_probe(AGENT_PORT, "/api/healthz", timeout, initial_delay_s=30, failures=120)
    return container


def _template(container: dict[str, Any], role: str) -> dict[str, Any]:
    """A pod template like the other workloads': non-root, no API token (Ray calls no Kubernetes API)."""
    return {
        "metadata": {"labels": {**objects.PART_OF, "app.kubernetes.io/component": role}},
        "spec": {
            "serviceAccountName": "mlstack-workload",
            "automountServiceAccountToken": False,
            "securityContext": objects.pod_security(APP_UID),
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def _object_store(size: Sizing) -> str:
    """A quarter of the pod's memory request, in bytes: the splits are small, and Ray's default (30% of the memory
    it is given, which KubeRay sets to the limit) would reserve more of the pod's memory than the trials can spare.
    KubeRay mounts /dev/shm sized by the memory limit (common/pod.go ``addEmptyDir``, ``findMemoryReqOrLimit``)."""
    return str(size.memory // 4 * 1024 * 1024)


def ray_cluster(namespace: str, image: str, profile: Profile) -> objects.Manifest:
    """The search cluster, sized by ``profile``: with workers, the head runs only the job's driver (``num-cpus: 0``)
    and trials go to the workers; without (laptop), the head runs the trials too (KubeRay sets ``num-cpus`` from the
    CPU limit, rounded up: common/pod.go ``generateRayStartCommand``)."""
    head, worker = profile["kuberay.head"], profile["kuberay.worker"]
    # The operator defaults dashboard-host to 0.0.0.0 too (common/pod.go setMissingRayStartParams); stated here
    # because the Jobs API must answer from outside the pod.
    head_params = {"dashboard-host": "0.0.0.0", "object-store-memory": _object_store(head)}
    if worker.replicas:
        head_params["num-cpus"] = "0"
    spec: dict[str, Any] = {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": {
            "rayStartParams": head_params,
            "template": _template(_ray_container("ray-head", image, head, head=True), "ray-head"),
        },
    }
    if worker.replicas:
        spec["workerGroupSpecs"] = [
            {
                "groupName": "trials",
                # A fixed size (no in-tree autoscaler: its sidecar and RBAC are more moving parts than it saves).
                "replicas": worker.replicas,
                "minReplicas": worker.replicas,
                "maxReplicas": worker.replicas,
                "rayStartParams": {"object-store-memory": _object_store(worker)},
                "template": _template(_ray_container("ray-worker", image, worker, head=False), "ray-worker"),
            }
        ]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": SEARCH_CLUSTER, "namespace": namespace, "labels": dict(objects.PART_OF)},
        "spec": spec,
    }


class KubeRay(PlatformService):
    """The KubeRay operator chart (CRDs included)."""

    kind = "KubeRay"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        operator = args.profile["kuberay.operator"]
        self.release = self.chart("operator", versions.KUBERAY_OPERATOR, {"resources": operator.resources()})
        self.done({"version": versions.KUBERAY_OPERATOR.version})


class SearchCluster(pulumi.ComponentResource):
    """The Ray cluster the components' searches run on, in the workloads namespace, on the pipeline image (the
    search step's code and packages, Ray with its dashboard). Created with the components, after the operator, the
    namespace and the image it runs; ``address`` is what the scheduled runs get as ``ray_address``."""

    def __init__(
        self,
        name: str,
        namespace: str,
        image: str,
        profile: Profile,
        provider: k8s.Provider,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlstack:components:RaySearchCluster", name, None, opts)
        self.address = search_address(namespace)
        self.cluster = objects.register(
            f"{name}-raycluster",
            ray_cluster(namespace, image, profile),
            pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                depends_on=list(depends_on),
                # KubeRay 1.4 does not roll existing pods to a new template (a new image): replace the cluster.
                replace_on_changes=["spec"],
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"address": self.address})
