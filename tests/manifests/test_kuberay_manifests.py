"""The search cluster's ``RayCluster``, as the program registers it for both stacks: only fields KubeRay v1.4.2's CRD
defines, its pod templates valid Pods that pass the project's policy (non-root, no privilege escalation, capabilities
dropped, requests and limits, a pinned image), like every other workload.

Field sets recorded from ray-project/kuberay@v1.4.2:ray-operator/config/crd/bases/ray.io_rayclusters.yaml (version
``v1``, served and stored): ``spec`` requires ``headGroupSpec``; ``headGroupSpec`` requires ``template``; each of
``workerGroupSpecs`` requires ``groupName``, ``minReplicas``, ``maxReplicas``, ``template``; ``rayStartParams`` is a
map of strings; ``replicas``/``minReplicas``/``maxReplicas`` are int32.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest

from tests.manifests import policy
from tests.manifests.test_infra_manifests import KUBERNETES_VERSION, as_manifest
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

RAY_CLUSTER_SPEC = {
    "autoscalerOptions",
    "enableInTreeAutoscaling",
    "gcsFaultToleranceOptions",
    "headGroupSpec",
    "headServiceAnnotations",
    "managedBy",
    "rayVersion",
    "suspend",
    "workerGroupSpecs",
}
HEAD_GROUP = {"enableIngress", "headService", "rayStartParams", "serviceType", "template"}
WORKER_GROUP = {
    "groupName",
    "idleTimeoutSeconds",
    "maxReplicas",
    "minReplicas",
    "numOfHosts",
    "rayStartParams",
    "replicas",
    "scaleStrategy",
    "suspend",
    "template",
}
WORKER_REQUIRED = {"groupName", "minReplicas", "maxReplicas", "template"}


@pytest.fixture(scope="module", params=["kind", "gke"])
def ray_cluster(request: pytest.FixtureRequest) -> dict[str, Any]:
    raw = {**stack_config(request.param), "components": json.dumps(["fraud"])}
    if request.param == "gke":
        raw["imageRegistry"] = "europe-west4-docker.pkg.dev/mlstack-demo/mlstack"
    run = mocks.run(raw, stack_name=request.param)
    (cluster,) = [as_manifest(r) for r in run.of_type("kubernetes:ray.io/v1:RayCluster")]
    return cluster


def _templates(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [spec["headGroupSpec"]["template"], *(w["template"] for w in spec.get("workerGroupSpecs", []))]


def test_only_crd_fields(ray_cluster: dict[str, Any]) -> None:
    assert ray_cluster["apiVersion"] == "ray.io/v1"
    spec = ray_cluster["spec"]
    assert "headGroupSpec" in spec and set(spec) <= RAY_CLUSTER_SPEC, set(spec) - RAY_CLUSTER_SPEC
    head = spec["headGroupSpec"]
    assert "template" in head and set(head) <= HEAD_GROUP, set(head) - HEAD_GROUP
    for group in spec.get("workerGroupSpecs", []):
        assert WORKER_REQUIRED <= set(group) <= WORKER_GROUP, set(group) ^ WORKER_REQUIRED
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert float(group[key]).is_integer() and 0 <= group[key] < 2**31, key
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    for params in [
        head.get("rayStartParams", {}),
        *(g.get("rayStartParams", {}) for g in spec.get("workerGroupSpecs", [])),
    ]:
        assert all(isinstance(v, str) for v in params.values()), params
    assert len(ray_cluster["metadata"]["name"]) <= 53  # KubeRay's MaxRayClusterNameLength


def test_pod_templates_are_valid_pods_that_pass_policy(ray_cluster: dict[str, Any]) -> None:
    for template in _templates(ray_cluster["spec"]):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "ray", **template.get("metadata", {})},
            "spec": template["spec"],
        }
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        assert policy.violations(pod) == []


def test_policy_would_catch_a_root_ray_pod(ray_cluster: dict[str, Any]) -> None:
    """The check above can fail: the same template run as root is refused."""
    template = _templates(ray_cluster["spec"])[0]
    spec = {**template["spec"], "securityContext": {"runAsUser": 0}}
    spec["containers"] = [{**c, "securityContext": {}} for c in spec["containers"]]
    problems = policy.violations({"kind": "Pod", "metadata": {"name": "ray"}, "spec": spec})
    assert any("non-root" in p for p in problems) and any("capabilities" in p for p in problems)
