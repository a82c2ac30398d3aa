"""Finding components: by name, through the ``mlstack.components`` entry point group.

Every component is an installed entry point ``<name> = "<module>:<attribute>"`` naming its ``Component`` object:
the project's own (``components/<name>/``) are registered in its ``pyproject.toml`` and written into the
environment by its editable install; other packages register theirs the same way. Nothing here knows the folder
layout: templates reach a component only by name.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from contract.component import Component, ContractError

ENTRY_POINT_GROUP = "mlstack.components"


def _registered() -> dict[str, EntryPoint]:
    # The first registration of a name wins, as in importlib.metadata's own name lookup.
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def available() -> list[str]:
    """Names of all registered components, the project's own and other packages'."""
    return sorted(_registered())


def load(name: str) -> Component:
    """Import, type-check and validate one component by name.

    Every failure is a ``ContractError`` naming the component: an import that raises (a missing ``Component``
    field, a missing dependency, a syntax error), an entry point whose module does not exist, an export that is
    not a ``Component``, a name that differs from the registered one, or a broken declaration.
    """
    entry = _registered().get(name)
    if entry is None:
        raise ContractError(f"unknown component {name!r}; available: {', '.join(available()) or 'none'}")
    component = _resolve(name, entry)
    if not isinstance(component, Component):
        raise ContractError(
            f"component {name!r}: its package must export `component = Component(...)`, "
            f"found {type(component).__name__}"
        )
    if component.name != name:
        raise ContractError(f"component {name!r}: declares name {component.name!r}; the package name must match")
    return component.validate()


def _resolve(name: str, entry: EntryPoint) -> object:
    """The object ``entry`` names (``None`` for a missing attribute), importing its module.

    Two failures are told apart: a registration that points at no module (a package removed but still
    installed) is the entry point's problem; a module that exists and raises while importing is the package's.
    """
    try:
        module = importlib.import_module(entry.module)
    except ContractError:
        raise  # already names the component (e.g. the package validates itself at import)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (entry.module == missing or entry.module.startswith(f"{missing}.")):
            raise _failure(name, f"loading entry point {entry.name} = {entry.value}", error) from error
        raise _failure(name, f"importing {entry.module}", error) from error
    except Exception as error:  # whatever the package raises while importing is the component's problem
        raise _failure(name, f"importing {entry.module}", error) from error
    target: object = module
    for part in entry.attr.split(".") if entry.attr else []:
        target = getattr(target, part, None)
    return target


def _failure(name: str, action: str, error: Exception) -> ContractError:
    """One line that names the component, what failed and the original error."""
    detail = " ".join(str(error).split()) or "no message"
    return ContractError(f"component {name!r}: {action} failed: {type(error).__name__}: {detail}")
