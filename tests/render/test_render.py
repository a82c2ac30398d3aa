"""The real Pulumi engine and Kubernetes provider render the kind stack; the result is valid, idempotent, removable."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate

from embedded.pulumi_toolchain import Toolchain
from tests.manifests import policy
from tests.render.conftest import RenderRun
from tests.render.render_stack import load_documents


def kubernetes_version() -> str:
    """The kind stack's Kubernetes version (the pinned node image), else the newest schema set we have."""
    try:
        from infra import versions

        found = re.search(r":v(\d+\.\d+)", versions.KIND_NODE_IMAGE)
    except ImportError:
        found = None
    return f"{found.group(1)}.0" if found else kubernetes_validate.utils.latest_version()


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj['kind']} {meta.get('namespace', '-')}/{meta.get('name')}"


def policy_problems(documents: list[dict[str, Any]]) -> list[str]:
    """The manifest tier's policy (tests/manifests/policy.py) on what the real provider rendered.

    One rule is relaxed, for Secrets only: render mode writes every Secret with its data in plain text (the provider
    documents it), so a Secret the program fills from a generated password necessarily has literal data here.
    """
    return [problem for doc in documents if doc["kind"] != "Secret" for problem in policy.violations(doc)]


def test_render_creates_the_stack(render_run: RenderRun) -> None:
    report = render_run.report
    created = report["up_changes"].get("create", 0)
    assert created > 0, f"pulumi up created nothing: {report['up_changes']}"
    assert report["rendered_files"], "the provider rendered no file"
    assert set(report["preview_changes"]) <= {"create", "same"}, report["preview_changes"]
    print("\n".join(f"{kind}: {count}" for kind, count in report["kinds"].items()))


def test_rendered_objects_match_the_kubernetes_schemas(render_run: RenderRun) -> None:
    version = kubernetes_version()
    documents = load_documents(render_run.snapshot)
    assert documents
    custom_kinds = {
        (doc["spec"]["group"], doc["spec"]["names"]["kind"])
        for doc in documents
        if doc["kind"] == "CustomResourceDefinition"
    }
    errors, no_schema = [], []
    for doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            no_schema.append(doc)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{_name(doc)}: {error.message} at {'/'.join(map(str, error.path))}")
    assert not errors, "\n".join(errors)
    # Objects without a built-in schema must be custom resources; CRDs that come from upstream charts are left out of
    # render mode, so only our own CRDs' kinds can be checked against what was rendered.
    not_custom = [_name(d) for d in no_schema if "." not in str(d["apiVersion"]).split("/")[0]]
    assert not not_custom, f"core objects without a schema in Kubernetes {version}: {not_custom}"
    print(
        f"validated {len(documents) - len(no_schema)} objects against Kubernetes {version}; custom resources: "
        + ", ".join(sorted({_name(d) for d in no_schema}))
    )
    print("CRDs rendered: " + ", ".join(sorted(f"{k}.{g}" for g, k in custom_kinds)))


def test_rendered_objects_pass_the_security_policy(render_run: RenderRun) -> None:
    problems = policy_problems(load_documents(render_run.snapshot))
    assert not problems, "\n".join(problems)


def test_second_up_changes_nothing(render_run: RenderRun) -> None:
    changes = render_run.report["second_up_changes"]
    assert set(changes) == {"same"}, f"second pulumi up was not a no-op: {changes}"


def test_destroy_removes_the_rendered_files(render_run: RenderRun) -> None:
    report = render_run.report
    assert report["files_left_after_destroy"] == [], report["files_left_after_destroy"]
    assert report["destroy_changes"].get("delete", 0) == report["up_changes"].get("create", 0)


def test_render_mode_lists_what_it_left_out(render_run: RenderRun) -> None:
    left_out = render_run.report["left_out"]
    assert isinstance(left_out, list)
    if render_run.report["program"].startswith("stand-in"):
        assert left_out, "the stand-in switches out its remote chart"
    print("left out by render mode:\n" + ("\n".join(left_out) or "nothing"))


def test_engine_used_the_built_provider(render_run: RenderRun, toolchain: Toolchain) -> None:
    """Nothing was downloaded; with the provider standing in for another version, the engine says it used it."""
    assert "downloading" not in render_run.output.lower()
    if toolchain.provider_is_ambient:
        warnings = render_run.report["engine_warnings"]
        assert any("pulumi-resource-kubernetes from $PATH" in w for w in warnings), warnings


def test_render_policy_exempts_only_secret_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"db": "password: hunter2"}}
    root = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
    }
    problems = policy_problems([secret, config, root])
    assert not [p for p in problems if p.startswith("Secret/")]
    assert any(p.startswith("ConfigMap/c") for p in problems)
    assert any("non-root" in p for p in problems) and any("pinned" in p for p in problems)
