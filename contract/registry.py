"""Finding components: every package under ``components/`` that exports ``component``, plus installed
packages that register one under the ``mlstack.components`` entry point group."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from contract.component import Component, ContractError

ENTRY_POINT_GROUP = "mlstack.components"


COMPONENTS_DIR = Path(__file__).resolve().parent.parent / "components"


def _builtin_names() -> list[str]:
    # Scanned, not imported: templates reach components only by name, through this registry.
    return sorted(m.name for m in pkgutil.iter_modules([str(COMPONENTS_DIR)]) if m.ispkg)


def available() -> list[str]:
    """Names of all components, built-in and installed."""
    return sorted({*_builtin_names(), *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def load(name: str) -> Component:
    """Import, type-check and validate one component by name.

    Every failure is a ``ContractError`` naming the component: an import that raises (a missing ``Component``
    field, a missing dependency, a syntax error), an entry point that cannot be loaded, an export that is not a
    ``Component``, a name that differs from the package's, or a broken declaration.
    """
    if name in _builtin_names():
        module = _guarded(name, f"importing components.{name}", lambda: importlib.import_module(f"components.{name}"))
        component = getattr(module, "component", None)
    else:
        matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not matches:
            raise ContractError(f"unknown component {name!r}; available: {', '.join(available()) or 'none'}")
        entry = matches[0]
        component = _guarded(name, f"loading entry point {entry.name} = {entry.value}", entry.load)
    if not isinstance(component, Component):
        raise ContractError(
            f"component {name!r}: its package must export `component = Component(...)`, "
            f"found {type(component).__name__}"
        )
    if component.name != name:
        raise ContractError(f"component {name!r}: declares name {component.name!r}; the package name must match")
    return component.validate()


def _guarded(name: str, action: str, run: Callable[[], Any]) -> Any:
    """``run()``, with whatever it raises turned into one line that names the component and the original error."""
    try:
        return run()
    except ContractError:
        raise  # already names the component (e.g. the package validates itself at import)
    except Exception as error:  # whatever the package raises while importing is the component's problem
        detail = " ".join(str(error).split()) or "no message"
        raise ContractError(f"component {name!r}: {action} failed: {type(error).__name__}: {detail}") from error
