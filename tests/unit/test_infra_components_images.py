"""The project's images per component: content tags over exactly an image's inputs (the shared code, one
component's package and its entry point), so adding or changing a component changes no other component's image
references or pods; the build and load commands; the provider rebuilding only for a new tag."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from contract import registry
from infra import images
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_components import _owned, _with


def _tree(tmp: Path) -> Path:
    """A copy of what the serving and pipeline images are built from."""
    sources = ("images/serving", "images/pipeline", "pyproject.toml", *images.every_component("serving").sources)
    for source in sources:
        src = images.REPO_ROOT / source
        dst = tmp / source
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "target"), dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return tmp


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_content_tag_changes_only_with_the_build_context(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    spec = images.for_component("serving", "fraud", root)
    tag = images.content_tag(spec, root)
    assert tag == images.content_tag(images.for_component("serving", "fraud"), images.REPO_ROOT)
    assert tag.startswith("fraud-") and len(tag) == len("fraud-") + images.TAG_LENGTH
    (root / "serving" / "__pycache__").mkdir(exist_ok=True)
    (root / "serving" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    (root / "README.md").write_text("not in the context")
    _append(root / "pyproject.toml", "\n[tool.example]\nkey = 1\n")  # only its entry point counts
    assert images.content_tag(spec, root) == tag
    _append(root / "serving" / "server.py", "\n# changed\n")
    changed = images.content_tag(spec, root)
    assert changed != tag
    assert images.reference(spec, "reg.example/team", root) == f"reg.example/team/mlstack-serving:{changed}"


def _component_tags(root: Path) -> dict[str, str]:
    return {
        f"{name}-{component}": images.content_tag(images.for_component(name, component, root), root)
        for component in images.entry_points(root)
        for name in images.PER_COMPONENT
    }


def test_adding_or_changing_a_component_changes_only_its_own_images(tmp_path: Path) -> None:
    """Issue 21 item 5: a component's serving and pipeline tags depend on the shared code, its package and its
    entry point only, so a new component (its package and its line in pyproject.toml) or a change to one leaves
    every other component's tags, and so its pods, as they were; the search cluster's image (every component)
    is the one shared image that changes."""
    root = _tree(tmp_path)
    before = _component_tags(root)
    search = images.content_tag(images.every_component("pipeline", root), root)
    assert set(before) == {f"{n}-{c}" for n in images.PER_COMPONENT for c in ("delivery", "demand", "fraud")}
    shutil.copytree(root / "components" / "demand", root / "components" / "churn")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'demand = "components.demand:component"\n',
            'churn = "components.churn:component"\ndemand = "components.demand:component"\n',
        )
    )
    added = _component_tags(root)
    assert {k: added[k] for k in before} == before
    assert {"serving-churn", "pipeline-churn"} <= set(added) and added["serving-churn"].startswith("churn-")
    assert images.content_tag(images.every_component("pipeline", root), root) != search
    _append(root / "components" / "demand" / "__init__.py", "\n# changed\n")
    changed = _component_tags(root)
    assert {k for k in added if changed[k] != added[k]} == {"serving-demand", "pipeline-demand"}
    # A component's entry point is part of its tag: registering it elsewhere is a new image.
    pyproject.write_text(pyproject.read_text().replace("components.churn:component", "components.churn:other"))
    assert {k for k, v in _component_tags(root).items() if changed[k] != v} == {"serving-churn", "pipeline-churn"}


def _component_objects(run: mocks.Run, component: str) -> dict[str, str]:
    """A component's resources as the provider would receive them (inputs and what they wait on), serialized."""
    owned = {r.name: r for r in _owned(run, component)}
    return {
        name: json.dumps(
            {"inputs": r.inputs, "after": sorted(run.by_urn(u).name for u in r.dependencies)}, sort_keys=True
        )
        for name, r in owned.items()
    }


def test_a_third_component_leaves_the_others_pods_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a component (a registry stub: demand's declaration under another name, registered as an entry
    point) registers its own images and leaves fraud's and demand's resources byte-identical: the same image
    references, InferenceService, pipeline package and upload Job, so none of their pods is redeployed."""
    (tmp_path / "churn_stub.py").write_text(
        "import dataclasses\nfrom contract.registry import load\n"
        "component = dataclasses.replace(load('demand'), name='churn')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    stub = EntryPoint("churn", "churn_stub:component", registry.ENTRY_POINT_GROUP)
    registered = registry._registered
    monkeypatch.setattr(registry, "_registered", lambda: {**registered(), "churn": stub})
    points = images.entry_points
    monkeypatch.setattr(images, "entry_points", lambda root=images.REPO_ROOT: {**points(root), "churn": stub.value})
    both = mocks.run(_with(["fraud", "demand@3"]))
    three = mocks.run(_with(["fraud", "demand@3", "churn"]))
    assert {r.name for r in three.registrations if r.name.startswith("image-")} >= {
        "image-serving-churn",
        "image-pipeline-churn",
    }
    for component in ("fraud", "demand"):
        assert _component_objects(three, component) == _component_objects(both, component), component
    for name in ("fraud-isvc", "fraud-pipeline", "demand-isvc", "demand-pipeline"):
        assert three.named(name).inputs == both.named(name).inputs
    churn = three.named("churn-isvc").inputs["spec"]["predictor"]["containers"][0]["image"]
    assert churn.startswith("mlstack-serving:churn-")


def test_build_and_load_commands() -> None:
    spec = images.IMAGES["streaming"]
    ref = images.reference(spec)
    build, load = images.commands(spec, ref, "mlstack")
    assert build[:4] == ["docker", "buildx", "build", "--load"] and build[build.index("--file") + 1].endswith(
        "images/streaming/Dockerfile"
    )
    assert build[build.index("--tag") + 1] == ref and build[-1] == str(images.REPO_ROOT)
    assert load == ["kind", "load", "docker-image", ref, "--name", "mlstack"]
    assert images.commands(spec, "r/x:1", None)[-1] == ["docker", "push", "r/x:1"]


def test_image_provider_rebuilds_only_for_a_new_tag() -> None:
    provider = images._ImageProvider()
    same = provider.diff("id", {"ref": "mlstack-serving:abc"}, {"ref": "mlstack-serving:abc"})
    new = provider.diff("id", {"ref": "mlstack-serving:abc"}, {"ref": "mlstack-serving:def"})
    assert same.changes is False and new.changes is True and new.replaces == ["ref"]
