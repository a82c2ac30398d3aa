"""`make component NAME=...`: the scaffolded component validates, passes lint and types, and passes its own
generated unit tests; bad names and existing components are refused with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cli.scaffold import Scaffold, create, plan
from contract.registry import load
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
        shutil.rmtree(scaffold.package, ignore_errors=True)
        for test in scaffold.tests:
            test.unlink(missing_ok=True)


def test_a_scaffolded_component_validates_lints_and_passes_its_own_tests(scaffolded: Scaffold) -> None:
    component = load(scaffolded.name)
    assert component.model.task == "classification"
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


def test_bad_or_taken_names_are_refused() -> None:
    with pytest.raises(EmbeddedError, match="must match"):
        plan("Churn")
    with pytest.raises(EmbeddedError, match="reserved"):
        plan("class")
    with pytest.raises(EmbeddedError, match="exists already"):
        plan("fraud")
