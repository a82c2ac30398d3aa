"""The real Pulumi engine and Kubernetes provider render the kind stack (and the cloud stack, for its front door);
the result is valid, idempotent, removable.

The rendered objects get the manifest tier's checks, imported from it rather than copied: Kubernetes schema
validation for built-in kinds and its allow-list of custom kinds (``CUSTOM_KINDS`` of the platform, ``CUSTOM`` of the
use-case components), the field checks of those custom resources, the project's policy (``tests/manifests/policy.py``)
and kube-score with the same ignored checks and exclusions, and the default-deny-ingress rule per namespace.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contract.registry import load
from devtools import go_tools as tools
from devtools.pulumi_builds import PROVIDER_VERSION, Toolchain
from infra import versions
from tests.manifests import policy
from tests.manifests import test_components_manifests as component_tier
from tests.manifests.test_infra_manifests import (
    CUSTOM_KINDS,
    INGRESS_NOT_DEFAULT_DENIED,
    KUBE_SCORE_IGNORED,
    KUBERNETES_VERSION,
    POLICIES_OF_OPERATOR_PODS,
    POLICIES_OF_OWN_PODS,
    SELECTS_UPSTREAM_PODS,
)
from tests.render.conftest import RenderRun
from tests.render.render_stack import PROGRAM, load_documents
from tests.support.kube_score import critical_findings

COMPONENT_LABEL = "mlstack.io/component"
# RayCluster: the training search's cluster, created with the first component (its CRD fields are checked in
# tests/manifests/test_kuberay_manifests.py).
ALLOWED_CUSTOM_KINDS = CUSTOM_KINDS | component_tier.CUSTOM | {"RayCluster"}
"""Kinds without a built-in schema the render may contain: the platform's and the use-case components' custom
resources, as the manifest tier lists them (their CRDs come from upstream charts, left out in render mode)."""


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj['kind']} {meta.get('namespace', '-')}/{meta.get('name')}"


def _from_chart(obj: dict[str, Any]) -> bool:
    return "helm.sh/chart" in ((obj.get("metadata") or {}).get("labels") or {})


def upstream_sources() -> list[str]:
    """Every upstream chart and kustomization the program can fetch at deploy time, from ``infra/versions.py`` (its
    registry of upstream sources), in the words the program's render mode lists them (``infra/services/base.py``)."""
    found = {
        f"helm chart {value.chart} {value.version}"
        for value in [*vars(versions).values(), *versions.UPSTREAM_CHARTS.values()]
        if isinstance(value, versions.HelmChart)
    }
    found |= {
        f"kustomization {value.url}" for value in vars(versions).values() if isinstance(value, versions.Kustomization)
    }
    return sorted(found)


def policy_problems(documents: list[dict[str, Any]]) -> list[str]:
    """The manifest tier's policy (tests/manifests/policy.py) on what the real provider rendered.

    One rule is relaxed as in the manifest tier, for the program's own Secrets only: render mode writes every Secret
    with its data in plain text (the provider documents it), so a Secret the program fills from a generated password
    necessarily has literal data here. A Secret rendered from a chart must still carry none.
    """
    return [
        problem
        for doc in documents
        for problem in policy.violations(doc)
        if not (problem.startswith("Secret/") and doc["kind"] == "Secret" and not _from_chart(doc))
    ]


def test_render_creates_the_stack(render_run: RenderRun) -> None:
    report = render_run.report
    assert report["program"] == PROGRAM, f"the render ran {report['program']!r}, not the project's program"
    created = report["up_changes"].get("create", 0)
    assert created > 0, f"pulumi up created nothing: {report['up_changes']}"
    assert report["rendered_files"], "the provider rendered no file"
    assert set(report["preview_changes"]) <= {"create", "same"}, report["preview_changes"]
    print(f"\nconfig set by the render stack: {report['config']}")
    print("\n".join(f"{kind}: {count}" for kind, count in report["kinds"].items()))


def test_render_mode_left_out_every_upstream_source(render_run: RenderRun) -> None:
    """The program listed each upstream chart and kustomization as left out, and nothing of its own."""
    left_out = render_run.report["left_out"]
    assert left_out is not None, "the program exported no renderLeftOut: does infra/ still support render mode?"
    expected = upstream_sources()
    listed = {entry.split(": ", 1)[1] for entry in left_out}
    assert sorted(listed) == expected, {"not listed": set(expected) - listed, "unknown": listed - set(expected)}
    assert len(left_out) == len(set(left_out)), left_out
    print(f"\nleft out by render mode ({len(left_out)}, every upstream source in infra/versions.py):")
    print("\n".join(f"  {entry}" for entry in left_out))


def test_rendered_objects_match_the_kubernetes_schemas(render_run: RenderRun) -> None:
    documents = load_documents(render_run.snapshot)
    assert documents
    custom = [doc for doc in documents if doc["kind"] in ALLOWED_CUSTOM_KINDS]
    errors = schema_errors(documents)
    assert not errors, "\n".join(errors)
    # Every allowed custom kind rendered: the platform's (Kafka, KnativeServing, ...) and the components'.
    assert {d["kind"] for d in custom} == ALLOWED_CUSTOM_KINDS, {d["kind"] for d in custom} ^ ALLOWED_CUSTOM_KINDS
    checked = len(documents) - len(custom)
    print(f"\nvalidated {checked} objects against Kubernetes {KUBERNETES_VERSION}; custom resources (allow-listed):")
    print("\n".join(f"  {name}" for name in sorted(_name(d) for d in custom)))


def test_rendered_custom_resources_use_only_crd_fields(render_run: RenderRun, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest tier's field checks of the components' custom resources, on what the provider wrote."""
    documents = load_documents(render_run.snapshot)
    components = render_run.report["config"]["components"]
    assert sorted(components) == sorted(component_tier.COMPONENTS), "the checks below expect every component"
    component_tier.test_kafka_topics_use_only_crd_fields(documents)
    component_tier.test_flink_deployments_use_only_crd_fields(documents)
    component_tier.test_inference_service_predictor_is_a_valid_pod_spec(documents)
    component_tier.test_inference_service_round_trips_through_kserve_models(documents, monkeypatch)


def test_use_case_objects_render(render_run: RenderRun) -> None:
    """Each configured component's KafkaTopics, FlinkDeployment and InferenceService are in the render."""
    documents = load_documents(render_run.snapshot)
    for component in render_run.report["config"]["components"]:
        own = [d for d in documents if (d["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == component]
        kinds = Counter(d["kind"] for d in own)
        flink = 2 if load(component).streaming.feedback is not None else 1  # the feature job; the monitor job
        assert kinds["KafkaTopic"] >= 1 and kinds["FlinkDeployment"] == flink and kinds["InferenceService"] == 1, kinds
        print(f"\n{component}: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
        for doc in own:
            if doc["kind"] in component_tier.CUSTOM:
                print(f"  {_name(doc)} ({doc['apiVersion']})")


def test_rendered_objects_pass_the_security_policy(render_run: RenderRun) -> None:
    problems = policy_problems(load_documents(render_run.snapshot))
    assert not problems, "\n".join(problems)


def test_kube_score_finds_nothing_critical(render_run: RenderRun, tmp_path: Path) -> None:
    """kube-score as the manifest tier runs it: the platform's objects with its ignored checks, the components' with
    the component tier's. Not scored, as there: custom resources, the Service in front of upstream pods, and the
    platform's NetworkPolicies in namespaces whose pods operators create (``POLICIES_OF_OPERATOR_PODS``)."""
    kube_score = tools.find("kube-score")
    if kube_score is None:
        pytest.skip(tools.missing_reason("kube-score"))
    documents = load_documents(render_run.snapshot)
    components = [d for d in documents if COMPONENT_LABEL in (d["metadata"].get("labels") or {})]
    platform = [d for d in documents if COMPONENT_LABEL not in (d["metadata"].get("labels") or {})]
    platform = [
        d
        for d in platform
        if (d["kind"], d["metadata"]["name"]) not in SELECTS_UPSTREAM_PODS
        and not (
            d["kind"] == "NetworkPolicy"
            and d["metadata"].get("namespace") in POLICIES_OF_OPERATOR_PODS
            and (d["metadata"].get("namespace"), d["metadata"]["name"]) not in POLICIES_OF_OWN_PODS
        )
    ]
    platform = [d for d in platform if d["kind"] not in ALLOWED_CUSTOM_KINDS]
    components = [d for d in components if d["kind"] not in ALLOWED_CUSTOM_KINDS]
    assert platform and components
    critical = critical_findings(kube_score, platform, KUBE_SCORE_IGNORED, tmp_path / "platform.yaml")
    critical += critical_findings(
        kube_score, components, component_tier.COMPONENT_KUBE_SCORE_IGNORED, tmp_path / "components.yaml"
    )
    assert critical == [], "\n".join(critical)
    print(f"\nkube-score: {len(platform)} platform and {len(components)} component objects, nothing critical")


def test_rendered_namespaces_deny_ingress_by_default(render_run: RenderRun) -> None:
    """The manifest tier's rule on what the provider wrote: every platform namespace denies ingress by default, but
    those ``INGRESS_NOT_DEFAULT_DENIED`` lists with a reason."""
    denied = policy.default_denied_namespaces(load_documents(render_run.snapshot))
    platform = platform_namespaces()
    assert denied == platform - set(INGRESS_NOT_DEFAULT_DENIED), denied ^ (platform - set(INGRESS_NOT_DEFAULT_DENIED))
    print(f"\ndefault-deny ingress in: {', '.join(sorted(denied))}")


def platform_namespaces() -> set[str]:
    from infra.services.inference_auth import NAMESPACE as INFERENCE_AUTH
    from infra.services.kserve import KNATIVE_NAMESPACE
    from infra.services.platform import NAMESPACES

    return {*NAMESPACES.values(), KNATIVE_NAMESPACE, INFERENCE_AUTH}


def schema_errors(documents: list[dict[str, Any]]) -> list[str]:
    errors = []
    for doc in documents:
        if doc["kind"] in ALLOWED_CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{_name(doc)}: no schema in Kubernetes {KUBERNETES_VERSION} and not an allowed custom kind")
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{_name(doc)}: {error.message} at {'/'.join(map(str, error.path))}")
    return errors


def test_the_cloud_stack_renders_private_with_tls_and_keys(render_run_gke: RenderRun) -> None:
    """Pulumi.gke.yaml as a user sets it (project, control-plane networks), through the real engine: valid objects,
    the policy, default-deny namespaces, no endpoint exposed but an internal gateway that serves HTTPS from the
    stack's CA and checks keys; a second up changes nothing (issue 22)."""
    from infra.services import cert_manager, inference_auth, kserve
    from tests.manifests.test_front_door import EXPOSED, gateway_problems

    report = render_run_gke.report
    assert report["up_changes"].get("create", 0) > 0 and set(report["second_up_changes"]) == {"same"}, report
    documents = load_documents(render_run_gke.snapshot)
    assert not (errors := schema_errors(documents)), "\n".join(errors)
    assert not (problems := policy_problems(documents)), "\n".join(problems)
    denied = policy.default_denied_namespaces(documents)
    assert denied == platform_namespaces() - set(INGRESS_NOT_DEFAULT_DENIED)
    exposed = [_name(d) for d in documents if d["kind"] == "Service" and d.get("spec", {}).get("type") in EXPOSED]
    assert exposed == []
    (serving,) = [d for d in documents if d["kind"] == "KnativeServing"]
    spec = serving["spec"]
    assert gateway_problems(spec) == [] and spec["ingress"]["kourier"]["service-type"] == "LoadBalancer"
    (override,) = spec["services"]
    assert override["annotations"] == {kserve.INTERNAL_LB_ANNOTATION: "Internal"}
    assert spec["config"]["network"]["external-domain-tls"] == "Enabled"
    assert spec["config"]["network"]["http-protocol"] == "Redirected"
    assert yaml.safe_load(spec["config"]["certmanager"]["issuerRef"])["name"] == cert_manager.GATEWAY_CA
    assert spec["config"]["kourier"] == inference_auth.kourier_config()
    print(f"\ncloud stack: {sum(report['kinds'].values())} objects, exposed none; gateway internal, HTTPS, keys")


def test_second_up_changes_nothing(render_run: RenderRun) -> None:
    changes = render_run.report["second_up_changes"]
    assert set(changes) == {"same"}, f"second pulumi up was not a no-op: {changes}"


def test_destroy_removes_the_rendered_files(render_run: RenderRun) -> None:
    report = render_run.report
    assert report["files_left_after_destroy"] == [], report["files_left_after_destroy"]
    assert report["destroy_changes"].get("delete", 0) == report["up_changes"].get("create", 0)


def test_engine_used_the_built_provider(render_run: RenderRun, toolchain: Toolchain) -> None:
    """Nothing was downloaded; the engine ran the provider we built, and says so where it stands in for another."""
    report = render_run.report
    assert "downloading" not in render_run.output.lower()
    assert report["provider"] == PROVIDER_VERSION.lstrip("v") == toolchain.provider_version
    print(
        f"\nkubernetes provider used: {report['provider']} (built from {PROVIDER_VERSION}); the pulumi-kubernetes "
        f"wheel asks for {report['provider_wanted']}, the program's provider resource requested "
        f"{report['provider_requested'] or 'no version'}"
    )
    if toolchain.provider_is_ambient:
        ambient = [w for w in report["engine_warnings"] if "pulumi-resource-kubernetes from $PATH" in w]
        assert ambient, report["engine_warnings"]
        print(f"engine: {ambient[0]}")


def test_render_policy_exempts_only_the_programs_secret_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}
    chart_secret = {**secret, "metadata": {"name": "chart", "labels": {"helm.sh/chart": "mlflow-0.1.0"}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"db": "password: hunter2"}}
    root = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
    }
    problems = policy_problems([secret, chart_secret, config, root])
    assert not [p for p in problems if p.startswith("Secret/db")]
    assert any(p.startswith("Secret/chart") for p in problems)
    assert any(p.startswith("ConfigMap/c") for p in problems)
    assert any("non-root" in p for p in problems) and any("pinned" in p for p in problems)


def test_upstream_sources_come_from_versions() -> None:
    sources = upstream_sources()
    assert f"helm chart {versions.CERT_MANAGER.chart} {versions.CERT_MANAGER.version}" in sources
    assert f"kustomization {versions.KFP_PLATFORM_AGNOSTIC.url}" in sources
    charts = {f"helm chart {c.chart} {c.version}" for c in versions.UPSTREAM_CHARTS.values()}
    assert charts <= set(sources) and any(s.startswith("kustomization ") for s in sources)
