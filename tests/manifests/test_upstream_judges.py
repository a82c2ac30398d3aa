"""Upstream's own code judges what the program renders: kustomize's remote-URL parser and Knative's revision
validation, run by ``tests/support/judges`` (a Go module built by ``make policy-tools``; see ``devtools/go_tools.py``).

- Every ``Kustomization`` in ``infra/versions.py`` goes through ``sigs.k8s.io/kustomize/api`` v0.21.1, the version
  pulumi-kubernetes' ``kustomize.v2.Directory`` uses from v4.30.0 to v4.32.0 and on its main branch (provider/go.mod;
  the render tier's provider build, commit f47bc2d = v4.25.0, has v0.19.0, whose parser ``internal/git/repospec.go``
  is the same): the repository, path and ref it reads must be ours.
- Every InferenceService predictor goes through ``knative.dev/serving`` (v0.46.0 = Knative v1.19.0, the operator's
  ``KNATIVE_VERSION``) the way KServe hands it to Knative (a Knative Service's ``RevisionSpec``), with the feature
  flags of the program's own ``KnativeServing``: Knative's webhook must accept it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools import go_tools as tools
from infra import versions
from tests.manifests.test_infra_manifests import as_manifest
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

COMPONENTS = ("fraud", "demand")
# Knative release -> knative.dev/serving module version (the module is tagged v0.<N>.x, not v1.x): checked at
# knative/serving, tags knative-v1.19.0 and v0.46.0 are the same commit (v0.45.x is Knative 1.18).
KNATIVE_SERVING_MODULE = {"v1.19.0": "v0.46.0"}
KUSTOMIZE_API = "v0.21.1"
# The ComponentExtensionSpec fields KServe copies into the Knative RevisionSpec (kserve v0.16.0,
# pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go); the other extension fields
# become annotations or stay with KServe.
REVISION_FIELDS = {"containerConcurrency": ("containerConcurrency",), "timeout": ("timeoutSeconds",)}
POD_SECURITY_FLAG = "kubernetes.podspec-securitycontext"


@pytest.fixture(scope="module")
def judges() -> Path:
    found = tools.find("judges")
    if found is None:
        pytest.skip(tools.missing_reason("judges"))
    return found


def judge(binary: Path, command: str, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = subprocess.run([str(binary), command, *args], capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def _ints(value: Any) -> Any:
    """The mock engine returns numbers as floats (protobuf Struct); Go's JSON decoder wants 8080, not 8080.0."""
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def test_judges_are_the_pinned_upstream_versions(judges: Path) -> None:
    _, built = judge(judges, "versions")
    modules = {m["module"]: m["version"] for m in built}
    assert modules["sigs.k8s.io/kustomize/api"] == KUSTOMIZE_API
    assert modules["knative.dev/serving"] == KNATIVE_SERVING_MODULE[versions.KNATIVE_VERSION]


# -- kustomize ------------------------------------------------------------------------------------------------


def test_kustomize_reads_our_repository_path_and_tag(judges: Path) -> None:
    kustomizations = [v for v in vars(versions).values() if isinstance(v, versions.Kustomization)]
    assert {versions.KFP_CLUSTER_RESOURCES, versions.KFP_PLATFORM_AGNOSTIC} <= set(kustomizations)
    code, parsed = judge(judges, "kustomize-url", *(k.url for k in kustomizations))
    assert code == 0, parsed
    for kustomization, seen in zip(kustomizations, parsed, strict=True):
        assert seen["remote"] is True, seen
        assert (seen["repo"], seen["path"], seen["ref"]) == (
            kustomization.repo,
            kustomization.path,
            kustomization.version,
        )
    assert {(s["host"], s["orgRepo"]) for s in parsed} == {("github.com", "kubeflow/pipelines")}


def test_github_tree_url_is_a_path_on_the_default_branch_to_kustomize(judges: Path) -> None:
    """Documents defect 3: the GitHub page form the program used before reads as directory ``tree/<tag>/...`` of
    the default branch (no ref), a directory kubeflow/pipelines does not have."""
    kfp = versions.KFP_PLATFORM_AGNOSTIC
    old = f"{kfp.repo}/tree/{kfp.version}/{kfp.path}"
    code, [seen] = judge(judges, "kustomize-url", old)
    assert code == 0  # it parses: nothing fails until the clone has no such directory
    assert (seen["repo"], seen["path"], seen["ref"]) == (kfp.repo, f"tree/{kfp.version}/{kfp.path}", "")


def test_kustomize_judge_rejects_a_local_path(judges: Path) -> None:
    code, [seen] = judge(judges, "kustomize-url", versions.KFP_PLATFORM_AGNOSTIC.path)
    assert code == 1 and seen["remote"] is False and "local" in seen["error"]


# -- Knative --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The components' InferenceServices and the feature flags of the ``KnativeServing``, from one kind stack."""
    run = mocks.run({**stack_config("kind"), "components": json.dumps(list(COMPONENTS))})
    isvcs = [as_manifest(r) for r in run.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")]
    [serving] = [as_manifest(r) for r in run.of_type("kubernetes:operator.knative.dev/v1beta1:KnativeServing")]
    assert len(isvcs) == len(COMPONENTS)
    return isvcs, dict(serving["spec"]["config"].get("features", {}))


def revision_spec(predictor: dict[str, Any]) -> dict[str, Any]:
    """What KServe's reconciler puts in the Knative Service's template: the pod fields, and the extension fields
    it copies; anything else in the predictor must be a ComponentExtensionSpec field KServe keeps."""
    from kserve.models import V1beta1ComponentExtensionSpec
    from kubernetes.client import V1PodSpec

    pod_fields = set(V1PodSpec.attribute_map.values())
    extension_fields = set(V1beta1ComponentExtensionSpec.attribute_map.values())
    spec = {k: v for k, v in predictor.items() if k in pod_fields}
    for key, value in predictor.items():
        assert key in pod_fields | extension_fields, f"predictor.{key} is neither a pod nor an extension field"
        for target in REVISION_FIELDS.get(key, ()):
            spec[target] = value
    return _ints(spec)


def _write(tmp_path: Path, name: str, features: dict[str, str], spec: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"features": features, "revisionSpec": spec}))
    return str(path)


def test_knative_accepts_every_predictor(
    judges: Path, rendered: tuple[list[dict[str, Any]], dict[str, str]], tmp_path: Path
) -> None:
    isvcs, features = rendered
    files = [
        _write(tmp_path, isvc["metadata"]["name"], features, revision_spec(isvc["spec"]["predictor"])) for isvc in isvcs
    ]
    code, verdicts = judge(judges, "knative-podspec", *files)
    assert [v["errors"] for v in verdicts] == [[] for _ in files], verdicts
    assert code == 0
    # Knative also warns on insecure Kubernetes defaults (runAsNonRoot, allowPrivilegeEscalation, seccompProfile,
    # capabilities): the predictors set them all.
    assert [v["warnings"] for v in verdicts] == [[] for _ in files]


@pytest.mark.parametrize("flag", ["disabled", "enabled"])
def test_knative_judge_gates_pod_security_context_on_the_feature_flag(
    judges: Path, rendered: tuple[list[dict[str, Any]], dict[str, str]], tmp_path: Path, flag: str
) -> None:
    """The judge bites: a pod-level ``runAsUser`` is refused unless ``kubernetes.podspec-securitycontext`` is on."""
    isvcs, features = rendered
    spec = revision_spec(isvcs[0]["spec"]["predictor"])
    spec["securityContext"] = {**spec.get("securityContext", {}), "runAsUser": 10001}
    code, [verdict] = judge(
        judges, "knative-podspec", _write(tmp_path, flag, {**features, POD_SECURITY_FLAG: flag}, spec)
    )
    if flag == "disabled":
        assert code == 1 and verdict["valid"] is False
        assert any("securityContext.runAsUser" in e for e in verdict["errors"]), verdict
    else:
        assert code == 0 and verdict["errors"] == [], verdict
