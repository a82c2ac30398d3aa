"""Discovery: components are found only through the ``mlstack.components`` entry point group (the project's own
registered in pyproject.toml), and whatever goes wrong while loading one (an import that raises, an entry point
that cannot load, an export that is not a ``Component``, a name that differs) is a ``ContractError`` that names
the component, shown by the CLI as one line."""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

import components
from contract import registry
from contract.component import ContractError
from contract.registry import ENTRY_POINT_GROUP, available, load

REPO_ROOT = Path(__file__).resolve().parents[2]

Write = Callable[[str, str], None]
Register = Callable[..., None]

A_COPY_OF_FRAUD = """
import dataclasses

from components.fraud import component as fraud

component = dataclasses.replace(fraud, name="{name}")
"""


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Register:
    """The environment's entry points replaced by the ones a test registers (none to start with)."""
    points: list[EntryPoint] = []

    def select(group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    monkeypatch.setattr(registry, "entry_points", select)
    return lambda *more: points.extend(more)


@pytest.fixture
def builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, installed: Register) -> Iterator[Write]:
    """Packages ``components.<name>`` written to ``tmp_path`` (not ``components/``, which other checks may be writing
    to) and registered the way pyproject.toml registers the project's own."""
    monkeypatch.setattr(components, "__path__", [*components.__path__, str(tmp_path)])
    before = set(sys.modules)

    def write(name: str, source: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
        importlib.invalidate_caches()
        installed(EntryPoint(name, f"components.{name}:component", ENTRY_POINT_GROUP))

    yield write
    for module in set(sys.modules) - before:
        if module.startswith("components."):
            del sys.modules[module]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            'from contract import Component\ncomponent = Component(name="{name}", description="no streaming")\n',
            "importing components.{name} failed: TypeError: Component.__init__() missing 3 required positional "
            "arguments: 'streaming', 'generate', and 'model'",
        ),
        ("import no_such_dependency_for_tests\n", "failed: ModuleNotFoundError: No module named"),
        ("from components.fraud.events import no_such_name\n", "failed: ImportError: cannot import name 'no_such"),
        ("component = (\n", "importing components.{name} failed: SyntaxError: '(' was never closed"),
    ],
    ids=["missing-field", "missing-module", "missing-name", "syntax"],
)
def test_a_package_that_fails_to_import_is_named(builtin: Write, source: str, message: str) -> None:
    builtin("broken", source.format(name="broken"))
    with pytest.raises(ContractError) as raised:
        load("broken")
    text = str(raised.value)
    assert text.startswith("component 'broken': ") and message.format(name="broken") in text, text
    assert "\n" not in text
    assert raised.value.__cause__ is not None  # the original error stays attached for a traceback


def test_a_package_that_exports_no_component_is_named(builtin: Write) -> None:
    builtin("empty", '"""Forgot the export."""\n')
    with pytest.raises(ContractError, match=r"component 'empty': its package must export .*found NoneType"):
        load("empty")
    builtin("wrongtype", 'component = {"name": "wrongtype"}\n')
    with pytest.raises(ContractError, match=r"component 'wrongtype': .*found dict"):
        load("wrongtype")


def test_a_package_whose_component_has_another_name_is_named(builtin: Write) -> None:
    builtin("misnamed", A_COPY_OF_FRAUD.format(name="fraud"))
    with pytest.raises(ContractError, match="component 'misnamed': declares name 'fraud'; the package name must"):
        load("misnamed")


def test_the_project_registers_its_own_components_and_the_environment_has_them() -> None:
    table = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert {"fraud", "demand"} <= set(table)
    installed = {p.name: p.value for p in entry_points(group=ENTRY_POINT_GROUP)}
    for name in ("fraud", "demand"):
        assert table[name] == installed[name] == f"components.{name}:component", (table, installed)
        assert load(name).name == name


def test_a_package_in_the_folder_is_not_a_component_until_registered(installed: Register) -> None:
    assert (REPO_ROOT / "components" / "fraud" / "__init__.py").exists()
    assert available() == []  # no folder is scanned: only entry points count
    with pytest.raises(ContractError, match="unknown component 'fraud'; available: none"):
        load("fraud")
    installed(EntryPoint("fraud", "components.fraud:component", ENTRY_POINT_GROUP))
    assert available() == ["fraud"] and load("fraud").name == "fraud"


def test_built_in_packages_are_found_through_their_entry_points(builtin: Write) -> None:
    builtin("copied", A_COPY_OF_FRAUD.format(name="copied"))
    assert "copied" in available()
    assert load("copied").name == "copied"


def test_installed_components_are_found_through_entry_points(
    installed: Register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "site"
    plugins.mkdir()
    (plugins / "mlstack_plugin_for_tests.py").write_text(A_COPY_OF_FRAUD.format(name="plugin"))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.delitem(sys.modules, "mlstack_plugin_for_tests", raising=False)
    installed(EntryPoint("plugin", "mlstack_plugin_for_tests:component", ENTRY_POINT_GROUP))
    assert "plugin" in available()
    assert load("plugin").name == "plugin"


def test_an_entry_point_that_fails_to_load_is_named(installed: Register) -> None:
    installed(
        EntryPoint("ghost", "no_such_plugin_for_tests:component", ENTRY_POINT_GROUP),
        EntryPoint("other", "no_such_plugin_for_tests:component", "some.other.group"),
    )
    assert available() == ["ghost"]
    with pytest.raises(ContractError) as raised:
        load("ghost")
    assert str(raised.value) == (
        "component 'ghost': loading entry point ghost = no_such_plugin_for_tests:component failed: "
        "ModuleNotFoundError: No module named 'no_such_plugin_for_tests'"
    )
    # The same for a registration left behind by a deleted package of the project's own.
    installed(EntryPoint("gone", "components.gone:component", ENTRY_POINT_GROUP))
    with pytest.raises(ContractError, match=r"^component 'gone': loading entry point gone = components\.gone:compo"):
        load("gone")


def test_component_list_marks_an_invalid_component_and_lists_the_rest(builtin: Write) -> None:
    from typer.testing import CliRunner

    from cli.mlstack import app

    builtin("abroken", "component = (\n")
    builtin("copied", A_COPY_OF_FRAUD.format(name="copied"))
    result = CliRunner().invoke(app, ["component", "list"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("  abroken: invalid component 'abroken': importing components.abroken failed")
    assert lines[1].startswith("  copied: Fraud scoring")


def test_the_cli_prints_a_contract_error_as_one_line(
    builtin: Write, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import mlstack as cli

    builtin("broken", "import no_such_dependency_for_tests\n")
    monkeypatch.setattr(cli, "app", lambda: load("broken"))
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: component 'broken': importing components.broken failed")
