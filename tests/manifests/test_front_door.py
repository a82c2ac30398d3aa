"""UIs stay inside (issue 22 item 4): no Service the program registers is a LoadBalancer or NodePort, except the
inference gateway (the Knative Operator's Kourier Service, set through the KnativeServing), which on kind is the
NodePorts (HTTP and HTTPS) kind binds to 127.0.0.1 and on GKE an internal load balancer unless public with source
ranges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.cluster import kind
from infra.services import kserve
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

PUBLIC = {
    "publicInference": "true",
    "allowedSourceRanges": json.dumps(["203.0.113.0/24"]),
    # A public gateway needs certificates callers can verify without the stack's CA (infra/config.py).
    "tlsIssuer": "acme",
    "acmeEmail": "ops@example.org",
}
CASES = {"kind": {}, "gke": {}, "gke-public": PUBLIC}
EXPOSED = ("LoadBalancer", "NodePort")


def exposure_problems(run: mocks.Run) -> list[str]:
    """Every way the run exposes something beyond the inference gateway, or the gateway beyond its ranges."""
    problems = []
    for r in run.registrations:
        if r.typ == "kubernetes:core/v1:Service" and r.inputs.get("spec", {}).get("type") in EXPOSED:
            problems.append(f"Service {r.name} is a {r.inputs['spec']['type']}")
    for r in run.of_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing"):
        problems += gateway_problems(r.inputs["spec"])
    return problems


def gateway_problems(spec: dict[str, Any]) -> list[str]:
    kourier = spec["ingress"]["kourier"]
    kind_ = kourier.get("service-type", "ClusterIP")
    if kind_ == "NodePort":
        mapped = (kind.INGRESS_NODE_PORT, kind.INGRESS_HTTPS_NODE_PORT)  # the node ports kind binds to 127.0.0.1
        return (
            [] if (kourier.get("http-port"), kourier.get("https-port")) == mapped else [f"Kourier NodePort {kourier}"]
        )
    if kind_ != "LoadBalancer":
        return []
    overrides = [s for s in spec.get("services", []) if s["name"] == kserve.KOURIER_SERVICE]
    annotations = overrides[0].get("annotations", {}) if overrides else {}
    if annotations.get(kserve.INTERNAL_LB_ANNOTATION) == "Internal":
        return []
    if not annotations.get(kserve.SOURCE_RANGES_ANNOTATION, "").strip():
        return ["Kourier is a public LoadBalancer without source ranges"]
    return []


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request: pytest.FixtureRequest) -> mocks.Run:
    stack = request.param.split("-")[0]
    return mocks.run({**stack_config(stack), **CASES[request.param]}, stack_name=stack)


def test_only_the_inference_gateway_is_exposed(run: mocks.Run) -> None:
    assert exposure_problems(run) == []


def test_gateway_settings_per_stack(run: mocks.Run) -> None:
    spec = run.named("kserve-knative-serving").inputs["spec"]
    if spec["ingress"]["kourier"]["service-type"] == "NodePort":  # kind
        assert spec["ingress"]["kourier"]["service-type"] == "NodePort" and "services" not in spec
        return
    (override,) = spec["services"]
    assert override["name"] == "kourier"
    public = kserve.INTERNAL_LB_ANNOTATION not in override["annotations"]
    ranges = override["annotations"].get(kserve.SOURCE_RANGES_ANNOTATION)
    assert (public, ranges) in {(False, None), (True, "203.0.113.0/24")}


def test_the_check_fails_what_it_should() -> None:
    """The rule itself: a public gateway without ranges, a stray LoadBalancer and a NodePort elsewhere fail."""
    bare = {"ingress": {"kourier": {"enabled": True, "service-type": "LoadBalancer"}}}
    assert gateway_problems(bare) == ["Kourier is a public LoadBalancer without source ranges"]
    public = kserve.knative_serving(mocks_profile(), "x.local", node_port=False, public=True)
    assert gateway_problems(public["spec"]) != []
    assert gateway_problems(kserve.knative_serving(mocks_profile(), "x.local", node_port=False)["spec"]) == []
    other_port = {"ingress": {"kourier": {"service-type": "NodePort", "http-port": 30000}}}
    assert gateway_problems(other_port) != []
    # An HTTPS node port kind does not map would be a random, unbound one: also refused.
    unmapped_https = {"ingress": {"kourier": {"service-type": "NodePort", "http-port": kind.INGRESS_NODE_PORT}}}
    assert gateway_problems(unmapped_https) != []


def mocks_profile() -> Any:
    from infra.profiles import FULL

    return FULL


def test_gke_control_plane_only_from_listed_networks() -> None:
    run = mocks.run(stack_config("gke"), stack_name="gke")
    (cluster,) = run.of_type("gcp:container/cluster:Cluster")
    networks = cluster.inputs["masterAuthorizedNetworksConfig"]
    assert [c["cidrBlock"] for c in networks["cidrBlocks"]] == ["198.51.100.7/32"]
    assert networks["gcpPublicCidrsAccessEnabled"] is False
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert run.of_type("gcp:compute/routerNat:RouterNat")
