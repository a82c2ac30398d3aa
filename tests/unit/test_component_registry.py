"""Discovery: built-in packages and entry points are found, and whatever goes wrong while loading one (an import that
raises, an entry point that cannot load, an export that is not a ``Component``, a name that differs) is a
``ContractError`` that names the component, shown by the CLI as one line."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import components
from contract import registry
from contract.component import ContractError
from contract.registry import ENTRY_POINT_GROUP, available, load

Write = Callable[[str, str], None]

A_COPY_OF_FRAUD = """
import dataclasses

from components.fraud import component as fraud

component = dataclasses.replace(fraud, name="{name}")
"""


@pytest.fixture
def builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Write]:
    """Built-in components found in ``tmp_path`` instead of ``components/`` (which other checks may be writing to)."""
    monkeypatch.setattr(registry, "COMPONENTS_DIR", tmp_path)
    monkeypatch.setattr(components, "__path__", [*components.__path__, str(tmp_path)])
    before = set(sys.modules)

    def write(name: str, source: str) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
        importlib.invalidate_caches()

    yield write
    for module in set(sys.modules) - before:
        if module.startswith("components."):
            del sys.modules[module]


def _entry_points(monkeypatch: pytest.MonkeyPatch, *points: EntryPoint) -> None:
    def select(group: str) -> list[EntryPoint]:
        return [p for p in points if p.group == group]

    monkeypatch.setattr(registry, "entry_points", select)


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


def test_built_in_packages_are_found_by_scanning_the_folder(builtin: Write) -> None:
    builtin("copied", A_COPY_OF_FRAUD.format(name="copied"))
    assert "copied" in available()
    assert load("copied").name == "copied"


def test_installed_components_are_found_through_entry_points(
    builtin: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "site"
    plugins.mkdir()
    (plugins / "mlstack_plugin_for_tests.py").write_text(A_COPY_OF_FRAUD.format(name="plugin"))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.delitem(sys.modules, "mlstack_plugin_for_tests", raising=False)
    _entry_points(monkeypatch, EntryPoint("plugin", "mlstack_plugin_for_tests:component", ENTRY_POINT_GROUP))
    assert "plugin" in available()
    assert load("plugin").name == "plugin"


def test_an_entry_point_that_fails_to_load_is_named(builtin: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    _entry_points(
        monkeypatch,
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
