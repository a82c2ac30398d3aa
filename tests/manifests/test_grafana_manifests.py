"""Grafana on the cluster, as the program registers it under Pulumi mocks: the chart reads its admin password from the
generated Secret, reaches only the platform's Prometheus, stays ClusterIP without a test pod or root init container,
and its sidecar finds one ConfigMap per dashboard of ``monitoring.dashboards`` (the panels embedded mode draws)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import serving.metrics
from infra import versions
from infra.profiles import PROFILES
from infra.services.grafana import (
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    PASSWORD_KEY,
    POD_LABELS,
    PORT,
    SECRET,
    USER_KEY,
)
from monitoring.dashboards import DATASOURCE_UID, dashboards, grafana_json
from tests.manifests.test_infra_manifests import as_manifest
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

pytestmark = pytest.mark.manifests

STACKS = ("kind", "gke")


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest) -> mocks.Run:
    return mocks.run(stack_config(request.param), request.param)


def _chart(run: mocks.Run) -> dict[str, Any]:
    inputs: dict[str, Any] = run.named("grafana-server").inputs
    return inputs


def _own(run: mocks.Run, kind: str) -> list[dict[str, Any]]:
    return [as_manifest(r) for r in run.registrations if r.typ.endswith(f":{kind}")]


def _find_keys(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == key] + [x for v in value.values() for x in _find_keys(v, key)]
    if isinstance(value, list):
        return [x for v in value for x in _find_keys(v, key)]
    return []


def test_the_pinned_chart_in_its_own_namespace(run: mocks.Run) -> None:
    chart = _chart(run)
    assert chart["chart"] == versions.GRAFANA.chart and chart["version"] == versions.GRAFANA.version
    assert chart["repositoryOpts"]["repo"] == versions.GRAFANA.repo
    assert chart["namespace"] == "grafana"


def test_admin_password_is_the_generated_secret(run: mocks.Run) -> None:
    values = _chart(run)["values"]
    assert values["admin"]["existingSecret"] == SECRET and values["admin"]["passwordKey"] == PASSWORD_KEY
    (secret,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == SECRET]
    assert secret.inputs["metadata"]["namespace"] == _chart(run)["namespace"]
    assert "stringData" in secret.secret_paths
    generated = {p.inputs["result"] for p in run.of_type(mocks.PASSWORD_TYPE) if p.name == "grafana-admin-password"}
    assert secret.inputs["stringData"][PASSWORD_KEY] in generated and len(generated) == 1
    assert secret.inputs["stringData"] == {USER_KEY: "admin", PASSWORD_KEY: next(iter(generated))}
    assert not _find_keys(values, "adminPassword")
    assert all(password not in json.dumps(values) for password in generated)  # values carry the Secret's name only


def test_cluster_ip_only_no_test_pod_no_root_init_no_cluster_role(run: mocks.Run) -> None:
    values = _chart(run)["values"]
    assert values["service"]["type"] == "ClusterIP"
    assert not {"LoadBalancer", "NodePort"} & set(map(str, _find_keys(values, "type")))
    assert values["testFramework"]["enabled"] is False  # a Helm test hook renders as a plain pod under helm.v4
    assert values["initChownData"]["enabled"] is False and values["persistence"]["enabled"] is False
    assert values["rbac"] == {"create": True, "namespaced": True, "pspEnabled": False}
    # The chart's own pod security stays (runAsNonRoot, uid 472, drop ALL): no value here overrides it.
    assert not _find_keys(values, "securityContext") and not _find_keys(values, "containerSecurityContext")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_sized_by_the_profile(profile: str) -> None:
    run = mocks.run({**stack_config("kind"), "profile": profile}, "kind")
    values, sizes = _chart(run)["values"], PROFILES[profile]
    assert values["resources"] == sizes["grafana.server"].resources()
    assert values["replicas"] == sizes["grafana.server"].replicas
    assert values["sidecar"]["resources"] == sizes["grafana.sidecar"].resources()


def test_the_data_source_is_the_platforms_prometheus(run: mocks.Run) -> None:
    (source,) = _chart(run)["values"]["datasources"]["datasources.yaml"]["datasources"]
    prometheus = run.named("prometheus-server").inputs
    service = prometheus["values"]["server"]["fullnameOverride"]
    assert source["url"] == f"http://{service}.{prometheus['namespace']}.svc.cluster.local"
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus" and source["editable"] is False
    # ...and Prometheus admits Grafana's namespace on its port.
    (policy,) = [p for p in _own(run, "NetworkPolicy") if p["metadata"]["name"] == "allow-prometheus"]
    peers = policy["spec"]["ingress"][0]["from"]
    admitted = [
        v
        for p in peers
        for v in ((p.get("namespaceSelector") or {}).get("matchExpressions") or [{}])[0].get("values", [])
    ]
    assert _chart(run)["namespace"] in admitted, peers


def test_one_config_map_per_dashboard_where_the_sidecar_looks(run: mocks.Run) -> None:
    sidecar = _chart(run)["values"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True and sidecar["resource"] == "configmap"
    assert (sidecar["label"], sidecar["labelValue"]) == (DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE)
    assert "searchNamespace" not in sidecar  # the chart's default: its own namespace
    maps = [c for c in _own(run, "ConfigMap") if DASHBOARD_LABEL in c["metadata"].get("labels", {})]
    boards = dashboards(serving.metrics)
    assert sorted(c["metadata"]["name"] for c in maps) == sorted(f"dashboard-{b.key}" for b in boards)
    by_name = {c["metadata"]["name"]: c for c in maps}
    for board in boards:
        config_map = by_name[f"dashboard-{board.key}"]
        assert config_map["metadata"]["namespace"] == _chart(run)["namespace"]
        assert config_map["metadata"]["labels"][DASHBOARD_LABEL] == DASHBOARD_LABEL_VALUE
        assert config_map["data"] == {f"{board.uid}.json": grafana_json(board)}
        assert len(json.dumps(config_map["data"])) < 256 * 1024  # far under a ConfigMap's 1 MiB


def test_ingress_only_to_grafanas_port_from_its_namespace(run: mocks.Run) -> None:
    namespace = _chart(run)["namespace"]
    policies = {p["metadata"]["name"]: p for p in _own(run, "NetworkPolicy") if p["metadata"]["namespace"] == namespace}
    assert set(policies) == {"default-deny-ingress", "allow-grafana"}
    allow = policies["allow-grafana"]["spec"]
    assert allow["podSelector"] == {"matchLabels": POD_LABELS} == {"matchLabels": {"app.kubernetes.io/name": "grafana"}}
    assert allow["ingress"] == [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": PORT}]}]
