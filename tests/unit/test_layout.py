"""The layout holds: the rooms depend on each other only as README "Layout" says, nothing imports in a circle, and
no module grows past ~400 lines without saying why at its top.

The allowed dependencies are import-linter contracts in pyproject.toml (``[tool.importlinter]``); this runs
import-linter itself on them. Cycles are found on grimp's graph of the same packages (imports inside functions
count: a lazy import hides a cycle from the interpreter, not from a reader).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

from local.paths import REPO_ROOT

pytestmark = pytest.mark.unit

LONG_MODULE_LINES = 400
LONG_MODULE_REASON = "Longer than 400 lines because"
"""What a module over ``LONG_MODULE_LINES`` says in its first lines (its docstring), followed by the reason."""


def _root_packages() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


def test_rooms_depend_on_each_other_only_as_allowed() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every set of two or more modules that import each other in a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_strongly_connected_finds_a_cycle_and_only_cycles() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["d"]}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert strongly_connected({"a": ["b"], "b": []}) == []


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(*_root_packages(), cache_dir=None)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert strongly_connected(imports) == []


def _python_files() -> list[Path]:
    folders = [*_root_packages(), "tests", "benchmarks"]
    return sorted(p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in _python_files():
        lines = path.read_text().splitlines()
        if len(lines) > LONG_MODULE_LINES and LONG_MODULE_REASON not in "\n".join(lines[:40]):
            unexplained.append(f"{path.relative_to(REPO_ROOT)}: {len(lines)} lines")
    assert unexplained == [], f"split these, or say '{LONG_MODULE_REASON} ...' at the top: {unexplained}"


IGNORE_MARKER = "# type" + ": ignore"  # spelt in two parts so this file's own line is not one
SILENCED_CALL_ERRORS = ("call-overload", "call-arg", "arg-type")
"""mypy codes a ``type: ignore`` may not silence: one such hid a crash on every fresh machine (``_run`` got ``env``
twice); fix the call instead."""


def test_type_ignores_name_their_code_say_why_and_silence_no_call() -> None:
    offenders = []
    for path in _python_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code, found, rest = line.partition(IGNORE_MARKER)
            if not found or code.strip().startswith(('"', "#")):
                continue
            where = f"{path.relative_to(REPO_ROOT)}:{number}"
            if not rest.startswith("["):
                offenders.append(f"{where}: no error code")
            elif any(silenced in rest.split("]")[0] for silenced in SILENCED_CALL_ERRORS):
                offenders.append(f"{where}: silences a call or argument error")
            elif "#" not in rest.split("]", 1)[1]:
                offenders.append(f"{where}: no reason after it")
    assert offenders == []
