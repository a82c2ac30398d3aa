"""Every container the pinned Knative Operator and KServe chart start for Serving is sized by the profile and counted
in its totals, with the rules that decide pod counts stated here as read upstream (both stacks).

- KServe (kserve/kserve@v0.16.0:charts/kserve-resources/templates/deployment.yaml): the controller pod always has two
  containers, ``kube-rbac-proxy`` (resources from ``kserve.controller.rbacProxy.resources``, 100m/300Mi in
  values.yaml) and ``manager`` (``kserve.controller.resources``).
- Knative Operator (knative/operator@knative-v1.19.0): Serving 1.19 is the Deployments of
  cmd/operator/kodata/knative-serving/1.19.0/2-serving-core.yaml and 3-serving-hpa.yaml, with Kourier's from
  cmd/operator/kodata/ingress/1.19/kourier/kourier.yaml. ``spec.high-availability`` and ``spec.workloads[].replicas``
  set a Deployment's replicas unless it has an HPA; for one that has, they only raise the HPA's minimum, and its
  maximum by as much (pkg/reconciler/common/ha.go, workload_override.go, hpa.go).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.profiles import PROFILES, Profile
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

# Container -> the chart value path its resources come from (templates/deployment.yaml).
KSERVE_CONTROLLER_CONTAINERS = {
    "manager": ("kserve", "controller", "resources"),
    "kube-rbac-proxy": ("kserve", "controller", "rbacProxy", "resources"),
}
# Deployment -> its container, as the operator installs Serving 1.19 with Kourier.
SERVING_DEPLOYMENTS = {
    "activator": "activator",
    "autoscaler": "autoscaler",
    "controller": "controller",
    "webhook": "webhook",
    "autoscaler-hpa": "autoscaler-hpa",
    "net-kourier-controller": "controller",
    "3scale-kourier-gateway": "kourier-gateway",
}
# HPAs shipped with them: (minReplicas, maxReplicas); all scale on 100% of the CPU request. Their Deployments are
# the Serving names in hasHorizontalPodOrCustomAutoscaler (hpa.go), whose replicas the operator leaves to the HPA.
UPSTREAM_HPAS = {"activator": (1, 20), "webhook": (1, 5), "3scale-kourier-gateway": (1, 10)}


def hpa_transform(bounds: tuple[int, int], replicas: int) -> tuple[int, int]:
    """``hpaTransform``: raise the minimum to ``replicas`` and the maximum by as much; never lower either."""
    low, high = bounds
    return bounds if low >= replicas else (replicas, high + replicas - low)


def pods(name: str, spec: dict[str, Any]) -> tuple[int, int]:
    """(idle, most) pods of a Serving Deployment under a KnativeServing ``spec``: HA first, then the overrides."""
    override = next((w for w in spec.get("workloads", []) if w["name"] == name and "replicas" in w), None)
    ha = spec.get("high-availability", {}).get("replicas")
    if name in UPSTREAM_HPAS:
        bounds = UPSTREAM_HPAS[name]
        if override is None and ha is not None:
            bounds = hpa_transform(bounds, ha)
        if override is not None:
            bounds = hpa_transform(bounds, override["replicas"])
        return bounds
    count = 1 if ha is None else ha  # every Serving Deployment ships with one replica
    if override is not None:
        count = override["replicas"]
    return count, count


def _milli(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(quantity) * 1000


def _mebi(quantity: str) -> int:
    return int(quantity.removesuffix("Mi"))


@pytest.fixture(scope="module", params=("kind", "gke"))
def run(request: pytest.FixtureRequest) -> mocks.Run:
    raw = {**stack_config(request.param), "components": json.dumps(["fraud"])}
    if request.param != "kind":
        raw["imageRegistry"] = "europe-west4-docker.pkg.dev/mlstack-demo/mlstack"
    return mocks.run(raw, request.param)


def _profile(run: mocks.Run) -> Profile:
    return PROFILES[run.outputs["profile"]]


def test_rule_replicas_only_raise_an_hpa_minimum() -> None:
    """The rule as read: two replicas for the activator make its HPA 2..21; without an HPA they are the count."""
    spec = {"high-availability": {"replicas": 1}, "workloads": [{"name": "activator", "replicas": 2}]}
    assert pods("activator", spec) == (2, 21)
    assert pods("webhook", spec) == (1, 5)
    spec["workloads"].append({"name": "controller", "replicas": 2})
    assert pods("controller", spec) == (2, 2) and pods("autoscaler", spec) == (1, 1)


def test_kserve_controller_pod_is_sized_and_counted(run: mocks.Run) -> None:
    """Both containers of the controller pod get the profile's resources, from profile workloads the total counts."""
    values = run.named("kserve-controller").inputs["values"]
    profile = _profile(run)
    keys = {"manager": "kserve.controller", "kube-rbac-proxy": "kserve.rbac-proxy"}
    for container, path in KSERVE_CONTROLLER_CONTAINERS.items():
        resources: Any = values
        for part in path:
            resources = resources[part]
        assert resources == profile[keys[container]].resources(), container


def test_every_knative_serving_pod_is_sized_and_counted(run: mocks.Run) -> None:
    """Each Serving Deployment has a workload override sizing its container, and the requests of its idle pods sum
    to the profile's Knative Serving total; the HPA-scaled ones can grow past it (noted in ``infra/profiles.py``)."""
    spec = run.named("kserve-knative-serving").inputs["spec"]
    overrides = {w["name"]: w for w in spec["workloads"]}
    assert set(overrides) == set(SERVING_DEPLOYMENTS)
    cpu = memory = 0
    for name, container in SERVING_DEPLOYMENTS.items():
        (sized,) = overrides[name]["resources"]
        assert sized["container"] == container, name
        idle, most = pods(name, spec)
        assert idle == overrides[name]["replicas"], name
        assert (most > idle) == (name in UPSTREAM_HPAS), name
        cpu += _milli(sized["requests"]["cpu"]) * idle
        memory += _mebi(sized["requests"]["memory"]) * idle
    profile = _profile(run)
    serving = [w for k, w in profile.workloads.items() if k.startswith("knative.") and not w.set_by_upstream]
    assert (cpu, memory) == (sum(w.cpu * w.replicas for w in serving), sum(w.memory * w.replicas for w in serving))
