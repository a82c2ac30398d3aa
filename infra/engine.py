"""How this checkout runs the Pulumi engine for the program: which CLI, plugin home, provider and backend.

One definition for every caller that starts the engine: ``make preview | up | down`` (``cli/stack.py``), the kind
tier, and the render tier (``tests/render``, through ``devtools.pulumi_toolchain.Toolchain.env``).
``make tools`` (``devtools``) builds into the folders named here: the CLI and the Kubernetes provider under
``TOOLS_DIR`` and the provider installed into ``PULUMI_HOME``.

The rules, in ``environment``:

- the CLI's own folder first on ``PATH``, then the folders of providers built here (the engine takes a provider
  from ``PATH`` when no installed plugin matches the version the SDK asks for: its development path), then the main
  environment's ``bin`` (``python3`` with the Pulumi SDK, for the helper scripts that ship with the CLI);
- on what ``make tools`` built (a provider from it, or its plugin home), the engine never downloads a plugin
  (``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION``) and may use ambient plugins;
- ``PULUMI_HOME`` is the checkout's when given (the render tier's isolation, or ``plugin_home()``), else the user's;
- never an update check; the backend given, else the caller's choice (``backend()`` for the stack commands).

Standard library only: ``devtools`` imports it on the bare interpreter.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = REPO_ROOT / ".cache" / "tools"
"""Where ``make tools`` and ``make policy-tools`` build, one folder per tool and version (or source stamp)."""
PULUMI_HOME = TOOLS_DIR / "pulumi-home"
"""The checkout's plugin home: ``make tools`` installs the provider it built here."""
LOCAL_BACKEND = REPO_ROOT / ".state" / "pulumi"
"""The file backend the stack commands use without a Pulumi login."""
MAIN_VENV_BIN = REPO_ROOT / ".venv" / "bin"
PROVIDER_NAME = "pulumi-resource-kubernetes"


def built_cli() -> Path | None:
    """The newest ``pulumi`` that ``make tools`` built in this checkout, if any."""
    built = sorted(TOOLS_DIR.glob("pulumi-*/bin/pulumi"))
    return built[-1] if built else None


def pulumi_cli() -> Path | None:
    """``pulumi`` on PATH, else the one ``make tools`` built."""
    on_path = shutil.which("pulumi")
    return Path(on_path) if on_path else built_cli()


def built_providers() -> list[Path]:
    """The folders holding a Kubernetes provider ``make tools`` built (one per built version)."""
    return sorted(p.parent for p in TOOLS_DIR.glob(f"{PROVIDER_NAME}-*/bin/{PROVIDER_NAME}"))


def user_login() -> bool:
    """Whether the user has a Pulumi backend of their own: ``PULUMI_BACKEND_URL``, or a login in their home."""
    home = Path(os.environ.get("PULUMI_HOME") or Path.home() / ".pulumi")
    return "PULUMI_BACKEND_URL" in os.environ or (home / "credentials.json").exists()


def plugin_home() -> Path | None:
    """``PULUMI_HOME`` for the stack commands: the checkout's when ``make tools`` installed a provider into it, unless
    the user chose a home (``PULUMI_HOME``) or has a login (it lives in the user's home: replacing the home would
    switch backends)."""
    if "PULUMI_HOME" in os.environ or user_login() or not (PULUMI_HOME / "plugins").is_dir():
        return None
    return PULUMI_HOME


def backend() -> str | None:
    """The stack commands' backend: None (the user's login) when there is one, else the local file backend."""
    if user_login():
        return None
    LOCAL_BACKEND.mkdir(parents=True, exist_ok=True)
    return LOCAL_BACKEND.as_uri()


def environment(
    cli: Path,
    *,
    providers: Sequence[Path] = (),
    home: Path | None = None,
    backend: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the engine runs in (see the module's rules).

    Args:
        cli: The ``pulumi`` binary.
        providers: Folders with a provider built here, put on ``PATH`` for the engine.
        home: The plugin home; None keeps the user's (``~/.pulumi`` or their ``PULUMI_HOME``).
        backend: ``PULUMI_BACKEND_URL``; None keeps the user's.
        base: The environment to start from (default: this process's).

    Returns:
        The full environment for the ``pulumi`` process (or the Automation API's ``env_vars``).
    """
    env = dict(os.environ if base is None else base)
    path = [str(cli.parent), *(str(p) for p in providers), str(MAIN_VENV_BIN)]
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    if home is not None:
        env["PULUMI_HOME"] = str(home)
    if providers or home is not None:
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
        env.pop("PULUMI_IGNORE_AMBIENT_PLUGINS", None)
    if backend:
        env["PULUMI_BACKEND_URL"] = backend
    return env
