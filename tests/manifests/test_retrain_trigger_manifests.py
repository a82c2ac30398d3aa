"""The retraining trigger's objects, as the program registers them with components on both stacks: valid against the
Kubernetes schemas, passing the project's policy and kube-score; its Role grants exactly the calls the cluster
rollout makes (read from ``serving/rollout/cluster_backend.py`` itself), in the components' namespace only, nothing
cluster-wide; its NetworkPolicy admits Alertmanager (and the Prometheus server's scrapes) and lets out only what it
calls; Alertmanager's configuration with its second webhook passes ``amtool check-config``."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devtools import go_tools as tools
from infra.services.prometheus import ALERTMANAGER_PORT, TRIGGER, TRIGGER_PORT, trigger_url
from serving.rollout import cluster_backend
from tests.manifests import policy
from tests.manifests.test_infra_manifests import KUBE_SCORE_IGNORED, KUBERNETES_VERSION, as_manifest
from tests.support import pulumi_mocks as mocks
from tests.support.kube_score import critical_findings
from tests.unit.test_infra_config import stack_config

pytestmark = pytest.mark.manifests

COMPONENTS = ["fraud", "demand", "delivery"]
# What each Kubernetes client call of the rollout needs: (API group, resource, verb).
CALLS = {
    "get_namespaced_custom_object": "get",
    "patch_namespaced_custom_object": "patch",
    "read_namespaced_config_map": "get",
    "patch_namespaced_config_map": "patch",
    "create_namespaced_config_map": "create",
}
NEEDED = {
    ("serving.kserve.io", "inferenceservices", "get"),
    ("serving.kserve.io", "inferenceservices", "patch"),
    ("serving.knative.dev", "revisions", "get"),
    ("", "configmaps", "get"),
    ("", "configmaps", "patch"),
    ("", "configmaps", "create"),
}


@pytest.fixture(scope="module", params=("kind", "gke"))
def run(request: pytest.FixtureRequest) -> mocks.Run:
    registry = {"imageRegistry": "europe-west4-docker.pkg.dev/p/mlstack"} if request.param == "gke" else {}
    raw = {**stack_config(request.param), "components": json.dumps(COMPONENTS), **registry}
    return mocks.run(raw, stack_name=request.param)


def _objects(run: mocks.Run) -> dict[str, dict[str, Any]]:
    (root,) = run.of_type("mlstack:components:RetrainTrigger")
    return {r.name.removeprefix("retrain-trigger-"): as_manifest(r) for r in run.registrations if r.parent == root.urn}


def test_valid_against_the_kubernetes_schemas_and_the_policy(run: mocks.Run) -> None:
    found = _objects(run)
    for obj in found.values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert [p for obj in found.values() for p in policy.violations(obj)] == []
    (container,) = found["deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] and container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_rollout_makes_exactly_the_calls_the_role_is_written_for() -> None:
    tree = ast.parse(Path(cluster_backend.__file__).read_text())
    called = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr in ("api", "core")
    }
    assert called == set(CALLS), "a new Kubernetes call of the rollout: give the trigger's Role its verb"


def test_the_role_grants_exactly_what_the_rollout_calls_on_the_components_only(run: mocks.Run) -> None:
    found = _objects(run)
    role = found["role"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == NEEDED
    for rule in role["rules"]:
        if rule["verbs"] != ["create"] and rule["resources"] != ["revisions"]:  # names unknown ahead / unlimitable
            assert rule.get("resourceNames"), rule
    names = {n for rule in role["rules"] for n in rule.get("resourceNames") or []}
    assert names == {*COMPONENTS, *(f"{c}-rollout" for c in COMPONENTS)}
    assert role["metadata"]["namespace"] == "mlstack" == found["role-binding"]["metadata"]["namespace"]
    cluster_wide = [
        as_manifest(r) for r in run.registrations if r.typ.endswith((":ClusterRole", ":ClusterRoleBinding"))
    ]
    assert not [b for b in cluster_wide if TRIGGER in json.dumps(b)], "nothing cluster-wide"
    bindings = [as_manifest(r) for r in run.registrations if r.typ.endswith(":RoleBinding")]
    bound = [b for b in bindings if any(s.get("name") == TRIGGER for s in b.get("subjects") or [])]
    assert [b["roleRef"]["name"] for b in bound] == [role["metadata"]["name"]], "one binding, its own role"


def test_ingress_from_alertmanager_and_prometheus_only_egress_to_what_it_calls(run: mocks.Run) -> None:
    found = _objects(run)
    policy_spec = found["network-policy"]["spec"]
    pods = found["deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy_spec["podSelector"] == {"matchLabels": pods}
    assert policy_spec["policyTypes"] == ["Ingress", "Egress"]
    sources = [peer for rule in policy_spec["ingress"] for peer in rule["from"]]
    server = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"}
    alertmanager = {"app.kubernetes.io/name": "alertmanager"}
    assert sources == [{"podSelector": {"matchLabels": alertmanager}}, {"podSelector": {"matchLabels": server}}]
    assert all(rule["ports"] == [{"protocol": "TCP", "port": TRIGGER_PORT}] for rule in policy_spec["ingress"])
    ports = {(p["protocol"], p["port"]) for rule in policy_spec["egress"] for p in rule["ports"]}
    assert ports == {("TCP", 8888), ("TCP", 5000), ("TCP", 9090), ("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}
    assert all(rule.get("ports") for rule in policy_spec["egress"]), "no egress rule open on every port"
    # The monitoring namespace denies ingress by default: only this policy opens the trigger's port.
    namespace = found["deployment"]["metadata"]["namespace"]
    others = [
        as_manifest(r)
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == namespace and r.inputs["metadata"]["name"] != TRIGGER
    ]
    for other in others:
        selector = other["spec"]["podSelector"].get("matchLabels") or {}
        if all(pods.get(k) == v for k, v in selector.items()):
            for rule in other["spec"].get("ingress") or []:  # the default deny has none
                opened = [p["port"] for p in rule.get("ports") or []]
                assert opened and TRIGGER_PORT not in opened, other["metadata"]["name"]
    assert ALERTMANAGER_PORT != TRIGGER_PORT


def test_alertmanager_with_the_trigger_as_second_webhook_passes_amtool(run: mocks.Run, tmp_path: Path) -> None:
    alertmanager = run.named("prometheus-server").inputs["values"]["alertmanager"]
    config = {k: v for k, v in alertmanager["config"].items() if k != "enabled"}
    (receiver,) = config["receivers"]
    assert [h["url"] for h in receiver["webhook_configs"]][1] == trigger_url("monitoring")
    assert all(h["send_resolved"] is True for h in receiver["webhook_configs"])
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian's prometheus-alertmanager)")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run([amtool, "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_kube_score_finds_nothing_critical(run: mocks.Run, tmp_path: Path) -> None:
    kube_score = tools.find("kube-score")
    if kube_score is None:
        pytest.skip(tools.missing_reason("kube-score"))
    critical = critical_findings(
        kube_score, list(_objects(run).values()), KUBE_SCORE_IGNORED, tmp_path / "trigger.yaml"
    )
    assert critical == [], "\n".join(critical)
