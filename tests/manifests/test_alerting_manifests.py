"""Alerting on the cluster, as the program registers it under Pulumi mocks: the chart's Prometheus gets the very rule
file the embedded Prometheus loads, its Alertmanager routes to the in-cluster receiver (a configuration amtool
accepts), and the receiver is the repository's script, reachable by Alertmanager and holding no API credentials."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import serving.metrics
from infra.services.prometheus import ALERTMANAGER_PORT, RECEIVER, RECEIVER_PORT
from monitoring import alert_receiver
from monitoring.alert_rules import rule_file
from tests.manifests.test_infra_manifests import as_manifest
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

pytestmark = pytest.mark.manifests

STACKS = ("kind", "gke")


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest) -> mocks.Run:
    return mocks.run(stack_config(request.param), request.param)


def _values(run: mocks.Run) -> dict[str, Any]:
    values: dict[str, Any] = run.named("prometheus-server").inputs["values"]
    return values


def _own(run: mocks.Run, kind: str, name: str) -> dict[str, Any]:
    found = [
        as_manifest(r)
        for r in run.registrations
        if r.typ.endswith(f":{kind}") and (r.inputs.get("metadata") or {}).get("name") == name
    ]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} registered"
    return found[0]


def test_the_chart_loads_the_embedded_rule_file(run: mocks.Run, tmp_path: Path) -> None:
    rules = _values(run)["serverFiles"]["alerting_rules.yml"]
    assert rules == yaml.safe_load(rule_file(serving.metrics))  # one source for both modes
    promtool = shutil.which("promtool")
    if promtool:  # the unit tier runs the rules; here: the chart's copy parses as Prometheus reads it
        (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
        check = subprocess.run([promtool, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_alertmanager_routes_every_alert_to_the_in_cluster_receiver(run: mocks.Run, tmp_path: Path) -> None:
    alertmanager = _values(run)["alertmanager"]
    assert alertmanager["enabled"] is True and alertmanager["automountServiceAccountToken"] is False
    config = {k: v for k, v in alertmanager["config"].items() if k != "enabled"}  # the sub-chart omits "enabled"
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (hook,) = receiver["webhook_configs"]
    service = _own(run, "Service", RECEIVER)
    namespace = service["metadata"]["namespace"]
    assert hook["url"] == f"http://{RECEIVER}.{namespace}.svc.cluster.local:{RECEIVER_PORT}/alerts"
    assert hook["send_resolved"] is True
    assert run.named("prometheus-server").inputs["namespace"] == namespace
    amtool = shutil.which("amtool")
    if amtool:  # Alertmanager's own checker, on the configuration the sub-chart writes
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
        check = subprocess.run(
            [amtool, "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_receiver_runs_the_repository_script_without_credentials(run: mocks.Run) -> None:
    deployment = _own(run, "Deployment", RECEIVER)
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _own(run, "Service", RECEIVER)["spec"]["selector"] == labels
    (container,) = pod["containers"]
    script = _own(run, "ConfigMap", RECEIVER)["data"]
    assert script == {"alert_receiver.py": Path(alert_receiver.__file__).read_text()}
    assert container["command"][-1] == "/app/alert_receiver.py"
    assert {"name": "http", "containerPort": RECEIVER_PORT, "protocol": "TCP"} in container["ports"]
    account = _own(run, "ServiceAccount", RECEIVER)
    assert pod["serviceAccountName"] == RECEIVER
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    bindings = [r for r in run.registrations if r.typ.endswith("RoleBinding")]
    subjects = [s for b in bindings for s in b.inputs.get("subjects") or []]
    assert not [s for s in subjects if s.get("name") == RECEIVER], "the receiver needs no role"


def _admits(policy: dict[str, Any], labels: dict[str, str], port: int) -> bool:
    spec = policy["spec"]
    selected = spec["podSelector"].get("matchLabels") or {}
    if not all(labels.get(k) == v for k, v in selected.items()):
        return False
    for rule in spec.get("ingress") or []:
        same_namespace = any(peer == {"podSelector": {}} for peer in rule["from"])
        ports = [p["port"] for p in rule.get("ports") or []]
        if same_namespace and (not ports or port in ports):
            return True
    return False


def test_prometheus_reaches_alertmanager_and_alertmanager_the_receiver(run: mocks.Run) -> None:
    namespace = run.named("prometheus-server").inputs["namespace"]
    policies = [
        as_manifest(r)
        for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["namespace"] == namespace
    ]
    receiver_pods = _own(run, "Deployment", RECEIVER)["spec"]["template"]["metadata"]["labels"]
    # The sub-chart's pod labels (alertmanager-1.28.0: templates/_helpers.tpl, alertmanager.selectorLabels).
    alertmanager_pods = {"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/instance": "any"}
    assert any(_admits(p, alertmanager_pods, ALERTMANAGER_PORT) for p in policies)
    assert any(_admits(p, receiver_pods, RECEIVER_PORT) for p in policies)
    assert not any(_admits(p, receiver_pods, 9999) for p in policies if p["metadata"]["name"] != "allow-prometheus")
