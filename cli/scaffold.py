"""``make component NAME=<name>``: a new, working component package and its own tests, from a template.

The template is a small but real domain (entities whose activity sometimes turns unusual), so the new component
runs through the embedded lifecycle unchanged on the first try; components/README.md walks through making it
yours.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path

from contract.streaming import NAME
from local.errors import EmbeddedError
from local.paths import REPO_ROOT

TEMPLATE_DIR = Path(__file__).resolve().parent / "scaffold_template"
PACKAGE_FILES = ("__init__.py", "component.py", "events.py", "model.py")


@dataclass(frozen=True)
class Scaffold:
    name: str
    package: Path
    tests: tuple[Path, ...]

    @property
    def files(self) -> list[Path]:
        return [*(self.package / f for f in PACKAGE_FILES), *self.tests]


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
    if existing:
        raise EmbeddedError(f"component {name!r} exists already ({', '.join(existing)}); pick another name")
    return scaffold


def render(template: str, name: str) -> str:
    return template.replace("{{name}}", name).replace("{{title}}", name.replace("_", " ").capitalize())


def create(name: str, root: Path = REPO_ROOT) -> Scaffold:
    """Write the package and its tests; returns what was written."""
    scaffold = plan(name, root)
    sources = {scaffold.package / f: TEMPLATE_DIR / f"{f}.tmpl" for f in PACKAGE_FILES}
    sources[scaffold.tests[0]] = TEMPLATE_DIR / "test_unit.py.tmpl"
    sources[scaffold.tests[1]] = TEMPLATE_DIR / "test_local.py.tmpl"
    scaffold.package.mkdir(parents=True)
    for target, template in sources.items():
        target.write_text(render(template.read_text(), name))
    return scaffold
