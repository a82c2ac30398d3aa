"""Every Kubernetes object the project's own code and charts produce: valid against the Kubernetes schemas
(offline, ``kubernetes-validate``), passing the project's security policy and the kube-score checker; ``helm lint``
and ``helm template`` pass on the project's charts with the values the program gives them, for both profiles.

Upstream charts and manifests (fetched at deploy time) are not ours to lint; they are pinned in ``infra/versions.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devtools import go_tools as tools
from tests.manifests import policy
from tests.support import pulumi_mocks as mocks
from tests.support.kube_score import critical_findings
from tests.unit.test_infra_config import stack_config

ROOT = Path(__file__).resolve().parents[2]
CHARTS = sorted(p.parent for p in (ROOT / "charts").glob("*/Chart.yaml"))
KUBERNETES_VERSION = "1.34.0"  # the kind node image's version (infra/versions.py)
STACKS = ("kind", "gke")
# Custom resources (their CRDs come from upstream operators): listed so nothing unvalidated slips in unnoticed.
CUSTOM_KINDS = {"Kafka", "KafkaNodePool", "KnativeServing", "ClusterIssuer", "Certificate"}
# Our objects that select upstream pods (not in this set, so kube-score cannot match them): none since the Knative
# Operator's own Kourier Service is the kind host port's NodePort (infra/services/kserve.py).
SELECTS_UPSTREAM_PODS: frozenset[tuple[str, str]] = frozenset()
# NetworkPolicies of namespaces whose pods operators and upstream charts create (Knative revisions, Flink and Ray
# clusters, the Prometheus server, Grafana; component workers only once components are deployed): kube-score sees
# no pods.
POLICIES_OF_OPERATOR_PODS = {"mlstack", "monitoring", "grafana"}
# ...except those that select a workload of the project's own there (the alert receiver and, with components, the
# retraining trigger beside Prometheus).
POLICIES_OF_OWN_PODS = {("monitoring", "allow-alert-receiver"), ("monitoring", "retrain-trigger")}
# kube-score checks that do not apply here, each for a stated reason; every other check must not be CRITICAL.
KUBE_SCORE_IGNORED = {
    "container-image-pull-policy": "images are pinned by tag; IfNotPresent lets kind use images loaded into it",
    "container-ephemeral-storage-request-and-limit": "scratch space is emptyDir; memory and CPU are what we size",
    "container-security-context-user-group-id": "the postgres/redis images' own non-root uids (70, 999) are < 10000",
    "pod-probes-identical": "single-replica stores: liveness = readiness is the wanted restart signal",
    "deployment-has-poddisruptionbudget": "laptop profile runs one replica; PDBs would block node drains",
    "statefulset-has-poddisruptionbudget": "as above",
    "deployment-has-host-podantiaffinity": "single-node kind clusters cannot spread pods",
    "statefulset-has-host-podantiaffinity": "as above",
}


# Namespaces of the platform whose ingress this project does not deny by default, each for a stated reason. Every other
# platform namespace must carry a default-deny-ingress policy among the program's own objects.
INGRESS_NOT_DEFAULT_DENIED = {
    "cert-manager": "its webhook is called by the API server (on GKE from the control plane's range, unknown here)",
    "flink": "the operator's admission webhook, as above",
    "kserve": "KServe's admission webhooks, as above",
    "knative-serving": "the activator and Kourier gateway take all model traffic from the ingress; Knative webhooks",
    "kafka": "Strimzi writes the brokers' NetworkPolicies itself from each listener's networkPolicyPeers",
    "mlflow": "our chart's policies select every pod of the release (stores: the release; server: its clients)",
    "kubeflow": "upstream manifests applied unmodified (a deny would have to re-allow Argo, metadata and the UI)",
    "ray-system": "the KubeRay operator's own pod, from its upstream chart (it serves no one in the flow)",
}


def as_manifest(registration: mocks.Registration) -> dict[str, Any]:
    group_version, kind = registration.typ.removeprefix("kubernetes:").rsplit(":", 1)
    api_version = group_version.removeprefix("core/")
    body = {k: v for k, v in registration.inputs.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": api_version, "kind": kind, **body}


@pytest.fixture(scope="module")
def runs() -> dict[str, mocks.Run]:
    return {stack: mocks.run(stack_config(stack), stack_name=stack) for stack in STACKS}


@pytest.fixture(scope="module")
def own_objects(runs: dict[str, mocks.Run]) -> list[dict[str, Any]]:
    """Objects the program registers itself (not upstream charts or kustomizations), for every stack."""
    objects = []
    for run in runs.values():
        for r in run.registrations:
            if r.typ.startswith("kubernetes:") and r.typ.split(":")[1] not in ("helm.sh/v4", "kustomize/v2"):
                objects.append(as_manifest(r))
    return objects


@pytest.fixture(scope="module")
def helm() -> Path:
    found = tools.find("helm")
    if found is None:
        pytest.skip(tools.missing_reason("helm"))
    return found


def rendered(helm: Path, chart: Path, values: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    values_file = tmp / f"{chart.name}-values.json"
    values_file.write_text(json.dumps(values))
    result = subprocess.run(
        [str(helm), "template", chart.name, str(chart), "--namespace", chart.name, "-f", str(values_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def chart_objects(
    helm: Path, runs: dict[str, mocks.Run], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """``helm template`` of each chart with the exact values the program passes, for every stack."""
    tmp = tmp_path_factory.mktemp("charts")
    objects: list[dict[str, Any]] = []
    for run in runs.values():
        for registration in run.of_type("kubernetes:helm.sh/v4:Chart"):
            chart = Path(registration.inputs["chart"])
            if chart.is_absolute() and chart.parent == ROOT / "charts":
                objects.extend(rendered(helm, chart, registration.inputs.get("values", {}), tmp))
    return objects


def test_program_registers_own_objects_of_expected_kinds(own_objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in own_objects}
    assert {"Namespace", "Secret", "StatefulSet", "Deployment", "Service", "NetworkPolicy", "Role"} <= kinds
    assert kinds & CUSTOM_KINDS == CUSTOM_KINDS


def test_own_objects_valid_against_kubernetes_schemas(own_objects: list[dict[str, Any]]) -> None:
    checked = 0
    for obj in own_objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 40


def test_own_objects_pass_policy(own_objects: list[dict[str, Any]]) -> None:
    problems = [p for obj in own_objects for p in policy.violations(obj) if not p.startswith("Secret/")]
    assert problems == []
    # The program's Secrets carry generated values (secret outputs, proven in the unit tier), never chart literals.
    assert {o["metadata"]["name"] for o in own_objects if o["kind"] == "Secret"} == {
        "feast-credentials",
        "mlflow-credentials",
        "grafana-admin",
    }


def test_own_namespaces_deny_ingress_by_default(runs: dict[str, mocks.Run]) -> None:
    """Our namespaces deny ingress unless a policy allows it; the exceptions are listed with their reason."""
    from infra.services.inference_auth import NAMESPACE as INFERENCE_AUTH
    from infra.services.kserve import KNATIVE_NAMESPACE
    from infra.services.platform import NAMESPACES

    platform = {*NAMESPACES.values(), KNATIVE_NAMESPACE, INFERENCE_AUTH}
    for stack, run in runs.items():
        objects = [as_manifest(r) for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
        denied = policy.default_denied_namespaces(objects)
        assert platform - set(INGRESS_NOT_DEFAULT_DENIED) == denied, stack
        assert denied >= {"mlstack", "feast", "monitoring"}, stack


def test_policy_refuses_a_network_policy_open_to_every_source() -> None:
    open_rule = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "open", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]},
    }
    assert "admits every source" in "\n".join(policy.violations(open_rule))
    assert policy.default_denied_namespaces([open_rule]) == set()


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_helm_lint(helm: Path, chart: Path) -> None:
    result = subprocess.run([str(helm), "lint", "--strict", str(chart)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_chart_schema_rejects_typos_and_latest(helm: Path, chart: Path) -> None:
    for bad in (["--set", "servr.replicas=2"], ["--set", "server.image.tag=latest"]):
        result = subprocess.run([str(helm), "lint", str(chart), *bad], capture_output=True, text=True, check=False)
        assert result.returncode != 0, bad


def test_chart_objects_valid_and_pass_policy(chart_objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in chart_objects}
    assert {"Deployment", "StatefulSet", "Service", "NetworkPolicy", "ServiceAccount"} <= kinds
    for obj in chart_objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert [p for obj in chart_objects for p in policy.violations(obj)] == []


def test_kube_score_finds_nothing_critical(
    own_objects: list[dict[str, Any]], chart_objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    kube_score = tools.find("kube-score")
    if kube_score is None:
        pytest.skip(tools.missing_reason("kube-score"))
    # One file per stack's objects would duplicate names; kind's objects plus the charts' are a complete set.
    seen, objects = set(), []
    for obj in [*own_objects, *chart_objects]:
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        upstream = (obj["kind"], obj["metadata"]["name"]) in SELECTS_UPSTREAM_PODS or (
            obj["kind"] == "NetworkPolicy"
            and obj["metadata"].get("namespace") in POLICIES_OF_OPERATOR_PODS
            and (obj["metadata"].get("namespace"), obj["metadata"]["name"]) not in POLICIES_OF_OWN_PODS
        )
        if key not in seen and obj["kind"] not in CUSTOM_KINDS and not upstream:
            seen.add(key)
            objects.append(obj)
    critical = critical_findings(kube_score, objects, KUBE_SCORE_IGNORED, tmp_path / "all.yaml")
    assert critical == [], "\n".join(critical)


BAD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bad"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "redis:latest",
                        "env": [{"name": "DB_PASSWORD", "value": "hunter2"}],
                        "args": ["--uri=postgresql://u:hunter2@db:5432/x", "--requirepass", "$(DB_PASSWORD)"],
                        "resources": {"requests": {"cpu": "10m"}},
                    }
                ]
            },
        },
    },
}


def test_policy_catches_each_kind_of_violation() -> None:
    problems = "\n".join(policy.violations(BAD))
    for expected in (
        "non-root",
        "allowPrivilegeEscalation",
        "capabilities",
        "no memory request",
        "no cpu limit",
        "not pinned",
        "env DB_PASSWORD holds a literal",
        "credential inline",
        "password flag --requirepass on the command line",
    ):
        assert expected in problems
    config_map = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"f.yaml": "password: hunter2"}}
    assert policy.violations(config_map)
    expanded = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"f.yaml": "password: ${DB_PASSWORD}"}}
    assert policy.violations(expanded) == []


def test_mlflow_chart_with_external_stores(helm: Path, tmp_path: Path) -> None:
    """Cloud stacks may point the chart at managed stores: no in-chart Postgres or S3, the server wired to them."""
    chart = ROOT / "charts" / "mlflow"
    external = {
        "postgres": {"enabled": False, "host": "10.0.0.5"},
        "s3": {"enabled": False},
        "artifacts": {"bucket": "mlstack-artifacts", "endpoint": "https://storage.googleapis.com"},
    }
    objects = rendered(helm, chart, external, tmp_path)
    assert {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in ("StatefulSet", "Deployment")} == {
        ("Deployment", "mlflow")
    }
    server = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in server
    args = server["containers"][0]["args"]
    assert "--backend-store-uri=postgresql://mlflow:$(DB_PASSWORD)@10.0.0.5:5432/mlflow" in args
    assert "--artifacts-destination=s3://mlstack-artifacts/artifacts" in args
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert policy.violations(obj) == []
    missing_host = subprocess.run(
        [str(helm), "template", "mlflow", str(chart), "--set", "postgres.enabled=false"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing_host.returncode != 0 and "postgres.host is required" in missing_host.stderr


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_own_chart_layout(chart: Path) -> None:
    for part in ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates"):
        assert (chart / part).exists(), f"{chart.name}: missing {part}"
    assert not (chart / "crds").exists() and not (chart / "charts").exists(), "vendored CRDs or subcharts"


def test_no_upstream_crds_or_charts_copied_into_the_repository() -> None:
    skip = {".venv", ".venv-streaming", ".cache", ".state", ".git", "build", "node_modules"}
    for path in ROOT.rglob("*.y*ml"):
        if skip & set(path.relative_to(ROOT).parts):
            continue
        assert "kind: CustomResourceDefinition" not in path.read_text(errors="ignore"), path
    assert not list((ROOT / "charts").glob("*.tgz"))
