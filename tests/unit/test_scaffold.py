"""`make component NAME=...`: the scaffolded component is registered in pyproject.toml and the environment, validates,
passes lint and types, and passes its own generated unit tests; removing it leaves pyproject.toml and the
environment as they were; bad names and existing components are refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from cli.scaffold import Scaffold, create, plan, register, remove, unregister
from contract.registry import ENTRY_POINT_GROUP, load
from local.errors import EmbeddedError
from local.paths import REPO_ROOT

VENV_BIN = REPO_ROOT / ".venv" / "bin"


@pytest.fixture
def scaffolded() -> Iterator[Scaffold]:
    name = f"scaffoldcheck{os.getpid()}"
    scaffold = create(name)
    try:
        yield scaffold
    finally:
        remove(scaffold)


def _available_in_a_fresh_process() -> list[str]:
    """What the environment registers, as any new ``mlstack`` or model server process would see it."""
    code = "from contract.registry import available; print(' '.join(available()))"
    listed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return listed.stdout.split()


def test_a_scaffold_is_registered_and_its_removal_unregisters_it_from_project_and_environment() -> None:
    name = f"scaffoldcheckremoval{os.getpid()}"  # ignored by git, like the other scaffold checks
    line = f'{name} = "components.{name}:component"\n'
    scaffold = create(name)
    try:
        assert line in (REPO_ROOT / "pyproject.toml").read_text()
        assert name in {p.name for p in entry_points(group=ENTRY_POINT_GROUP)}
        assert name in _available_in_a_fresh_process()
        with pytest.raises(EmbeddedError, match="exists already"):
            plan(name)
    finally:
        remove(scaffold)
    # Other lines are not compared here: checks running at the same time in this tree may be adding their own.
    assert line not in (REPO_ROOT / "pyproject.toml").read_text()
    assert not scaffold.package.exists() and not any(t.exists() for t in scaffold.tests)
    assert name not in {p.name for p in entry_points(group=ENTRY_POINT_GROUP)}
    assert name not in _available_in_a_fresh_process()


def test_registering_and_unregistering_leaves_pyproject_byte_for_byte_as_it_was(tmp_path: Path) -> None:
    original = (REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(original)
    churn = plan("churn", tmp_path)
    register(churn, tmp_path)
    edited = (tmp_path / "pyproject.toml").read_text()
    table = tomllib.loads(edited)["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert table["churn"] == "components.churn:component" and {"fraud", "demand"} <= set(table)
    assert len(edited.splitlines()) == len(original.splitlines()) + 1  # one line added, nothing rewritten
    with pytest.raises(EmbeddedError, match=r"exists already.*entry point in pyproject\.toml"):
        plan("churn", tmp_path)
    unregister(churn, tmp_path)
    assert (tmp_path / "pyproject.toml").read_text() == original
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(EmbeddedError, match=r"no .*mlstack\.components.* table"):
        register(churn, tmp_path)
    assert (tmp_path / "pyproject.toml").read_text() == "[project]\nname = 'x'\n"


def test_a_scaffolded_component_validates_lints_and_passes_its_own_tests(scaffolded: Scaffold) -> None:
    component = load(scaffolded.name)
    assert component.model.task == "binary"
    _lints_and_passes_its_own_tests(scaffolded)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_scaffold_of_another_task_validates_lints_and_passes_its_own_tests(task: str) -> None:
    """``--task``: the same events and features, a model of that task (multiclass: three classes, predict_proba;
    regression: a count, against the last value), and a generated test whose bar is in that metric's terms."""
    scaffold = create(f"scaffoldcheck{task[:5]}{os.getpid()}", task=task)
    try:
        model = load(scaffold.name).model
        assert model.task == task and model.baseline is not None
        assert len(model.classes) == (3 if task == "multiclass" else 0)
        _lints_and_passes_its_own_tests(scaffold)
    finally:
        remove(scaffold)


def _lints_and_passes_its_own_tests(scaffolded: Scaffold) -> None:
    files = [str(p) for p in scaffolded.files]
    for tool in (["ruff", "check", *files], ["ruff", "format", "--check", *files], ["mypy", *files]):
        checked = subprocess.run([str(VENV_BIN / tool[0]), *tool[1:]], cwd=REPO_ROOT, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(scaffolded.tests[0])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "4 passed" in run.stdout


def test_bad_or_taken_names_and_unknown_tasks_are_refused() -> None:
    with pytest.raises(EmbeddedError, match="task 'classification' is not one of binary, multiclass, regression"):
        create("churn", task="classification")
    with pytest.raises(EmbeddedError, match="must match"):
        plan("Churn")
    with pytest.raises(EmbeddedError, match="reserved"):
        plan("class")
    with pytest.raises(EmbeddedError, match="exists already"):
        plan("fraud")
