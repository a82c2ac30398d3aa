"""``make component NAME=<name>``: a new, working component package and its own tests, from a template, registered
so the registry finds it.

The template is a small but real domain (entities whose activity sometimes turns unusual), so the new component
runs through the embedded lifecycle unchanged on the first try; components/README.md walks through making it
yours. Components are found only through the ``mlstack.components`` entry points, so the scaffold adds the new
package's line to pyproject.toml's table, next to the project's own, and re-runs the project's editable install,
which writes the entry points into the environment (``remove`` undoes both).
"""

from __future__ import annotations

import importlib
import keyword
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from contract.registry import ENTRY_POINT_GROUP
from contract.streaming import NAME
from local.errors import EmbeddedError
from local.paths import REPO_ROOT

TEMPLATE_DIR = Path(__file__).resolve().parent / "scaffold_template"
PACKAGE_FILES = ("__init__.py", "component.py", "events.py", "model.py")
MODEL_TEMPLATES = {
    "binary": "model.py.tmpl",
    "multiclass": "model_multiclass.py.tmpl",
    "regression": "model_regression.py.tmpl",
}
"""The scaffold's model per task type; its events and features are the same for all three."""
QUALITY_BARS = {
    "binary": ("0.8", "ROC AUC, higher is better"),
    "multiclass": ("0.2", "log loss, lower is better"),
    "regression": ("2.9", "MAE, lower is better"),
}
"""The generated unit test's bar per task, in the metric's own terms, with a margin over what the template's model
reaches offline (seeds 7, 11, 13): ROC AUC about 0.9; log loss 0.08-0.12 (class shares 0.32); MAE 2.3-2.5 (last
value 3.3)."""
ENTRY_POINT_TABLE = f'[project.entry-points."{ENTRY_POINT_GROUP}"]'


@dataclass(frozen=True)
class Scaffold:
    name: str
    package: Path
    tests: tuple[Path, ...]

    @property
    def files(self) -> list[Path]:
        return [*(self.package / f for f in PACKAGE_FILES), *self.tests]

    @property
    def entry_point(self) -> str:
        """Its line in pyproject.toml's ``mlstack.components`` table."""
        return f'{self.name} = "components.{self.name}:component"'


def plan(name: str, root: Path = REPO_ROOT) -> Scaffold:
    """Where the files of component ``name`` go; refuses names that cannot work or that exist."""
    if not NAME.match(name):
        raise EmbeddedError(f"component name {name!r} must match {NAME.pattern} (lower case, digits, underscores)")
    if keyword.iskeyword(name) or name in {"contract", "components", "test"}:
        raise EmbeddedError(f"component name {name!r} is reserved in Python or in this project")
    scaffold = Scaffold(
        name=name,
        package=root / "components" / name,
        tests=(
            root / "tests" / "unit" / f"test_component_{name}.py",
            root / "tests" / "local" / f"test_component_{name}.py",
        ),
    )
    existing = [str(p.relative_to(root)) for p in (scaffold.package, *scaffold.tests) if p.exists()]
    if name in _registered(root):
        existing.append(f"its entry point in pyproject.toml's {ENTRY_POINT_TABLE}")
    if existing:
        raise EmbeddedError(f"component {name!r} exists already ({', '.join(existing)}); pick another name")
    return scaffold


def render(template: str, name: str, task: str = "binary") -> str:
    bar, metric = QUALITY_BARS[task]
    replacements = {
        "{{name}}": name,
        "{{title}}": name.replace("_", " ").capitalize(),
        "{{task}}": task,
        "{{quality_bar}}": bar,
        "{{quality_metric}}": metric,
    }
    for placeholder, value in replacements.items():
        template = template.replace(placeholder, value)
    return template


def create(name: str, root: Path = REPO_ROOT, task: str = "binary") -> Scaffold:
    """Write the package and its tests, register the package and reinstall the project; returns what was written.

    ``task`` picks the model's task type (``binary``, ``multiclass`` or ``regression``; components/README.md,
    Task types). If registering fails, nothing is left behind: the files are deleted and pyproject.toml is restored.
    """
    if task not in MODEL_TEMPLATES:
        raise EmbeddedError(f"task {task!r} is not one of {', '.join(MODEL_TEMPLATES)}")
    scaffold = plan(name, root)
    sources = {scaffold.package / f: TEMPLATE_DIR / f"{f}.tmpl" for f in PACKAGE_FILES}
    sources[scaffold.package / "model.py"] = TEMPLATE_DIR / MODEL_TEMPLATES[task]
    sources[scaffold.tests[0]] = TEMPLATE_DIR / "test_unit.py.tmpl"
    sources[scaffold.tests[1]] = TEMPLATE_DIR / "test_local.py.tmpl"
    scaffold.package.mkdir(parents=True)
    for target, template in sources.items():
        target.write_text(render(template.read_text(), name, task))
    try:
        register(scaffold, root)
        reinstall(root)
    except BaseException:
        if scaffold.name in _registered(root):
            unregister(scaffold, root)
        _delete(scaffold)
        raise
    return scaffold


def remove(scaffold: Scaffold, root: Path = REPO_ROOT) -> None:
    """Undo ``create``: the registration first (so no entry point names a missing package), then the files."""
    if scaffold.name in _registered(root):
        unregister(scaffold, root)
        reinstall(root)
    _delete(scaffold)


def reinstall(root: Path = REPO_ROOT) -> None:
    """The project's editable install into the running environment, which rewrites its entry points.

    The same command as ``make setup`` runs (devtools/install.py), with that environment's uv when it has one.
    """
    if root.resolve() != REPO_ROOT:
        # An editable install of another tree would replace this environment's project with it.
        raise EmbeddedError(f"{root} is not the project this environment runs ({REPO_ROOT}); register it there")
    uv = Path(sys.executable).parent / "uv"
    installer = (
        [str(uv), "pip", "install", "--python", sys.executable]
        if uv.exists()
        else [sys.executable, "-m", "pip", "install"]
    )
    command = [*installer, "-q", "--no-deps", "-e", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise EmbeddedError(f"`{' '.join(command)}` failed ({done.returncode}): {tail}")
    importlib.invalidate_caches()  # this process's metadata lookups see the new entry points at once


def _registered(root: Path) -> dict[str, str]:
    project = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    table: dict[str, str] = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return table


def register(scaffold: Scaffold, root: Path = REPO_ROOT) -> None:
    """Add ``scaffold``'s line to pyproject.toml's entry point table (the environment learns it on reinstall)."""
    _edit_table(root, scaffold, add=True)


def unregister(scaffold: Scaffold, root: Path = REPO_ROOT) -> None:
    """Drop ``scaffold``'s line from pyproject.toml's entry point table, leaving the file as it was before."""
    _edit_table(root, scaffold, add=False)


def _edit_table(root: Path, scaffold: Scaffold, add: bool) -> None:
    """Add or drop ``scaffold``'s line in pyproject.toml's entry point table, touching no other line.

    A text edit, not a TOML rewrite, so comments and layout stay as written; the result is parsed before it is
    written, so a table it cannot find or a line it cannot place never reaches the file.
    """
    pyproject = root / "pyproject.toml"
    lines = pyproject.read_text().splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == ENTRY_POINT_TABLE)
    except StopIteration:
        raise EmbeddedError(f"pyproject.toml has no {ENTRY_POINT_TABLE} table to register components in") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    key = re.compile(rf"^\s*{re.escape(scaffold.name)}\s*=")
    kept = [line for line in lines[start + 1 : end] if not key.match(line)]
    if add:
        last = max((i for i, line in enumerate(kept) if line.strip()), default=-1)
        kept.insert(last + 1, scaffold.entry_point + "\n")
    text = "".join([*lines[: start + 1], *kept, *lines[end:]])
    table = tomllib.loads(text).get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if (table.get(scaffold.name) == f"components.{scaffold.name}:component") != add:
        raise EmbeddedError(f"could not {'add' if add else 'remove'} `{scaffold.entry_point}` in pyproject.toml")
    pyproject.write_text(text)


def _delete(scaffold: Scaffold) -> None:
    shutil.rmtree(scaffold.package, ignore_errors=True)
    for test in scaffold.tests:
        test.unlink(missing_ok=True)
