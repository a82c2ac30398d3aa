"""The Pulumi CLI and Kubernetes provider, built from Go modules: their pins, wrapper modules and plugin install.

The official installers cannot be reached from the development machines or CI, but the Pulumi CLI and the Kubernetes
provider are Go modules, and the Go module proxy is reachable. With the shared builder (``devtools/go_build.py``):

1. ``build_cli`` builds the CLI (``github.com/pulumi/pulumi/pkg/v3/cmd/pulumi``) in a small wrapper module of our own:
   ``pkg/v3``'s go.mod has replace directives, so ``go install pkg@version`` is refused; the wrapper requires
   ``pkg/v3`` and ``sdk/v3`` at one version and copies pkg/v3's non-local replaces. The Python helper scripts that
   ship in the ``sdk/v3`` module (``pulumi-language-python-exec``, ``pulumi-resource-pulumi-python`` for dynamic
   providers) go beside it;
2. ``build_provider`` builds the provider from ``github.com/pulumi/pulumi-kubernetes/provider/v4``: its ``main.go``
   embeds ``schema-embed.json`` and ``terraform-mapping-embed.json``, which the upstream build makes with ``go
   generate`` (``generate.go`` stamps the version into the checked-in ``schema.json``); we copy the command's package
   into a wrapper module, run that same ``generate.go``, then build;
3. ``install_provider`` installs it into the checkout's ``PULUMI_HOME`` (``infra/engine.py``) with ``pulumi plugin
   install resource kubernetes <version> --file <binary>``; automatic plugin acquisition stays off, so nothing is
   ever downloaded by the engine.

Each lands in ``TOOLS_DIR/<name>-<version>/``, stamped by its inputs. Version pins are limited by what the module
proxy serves (checked 2026-11-25, see ``PINS_NOTE``): the Kubernetes provider is a pseudo-version build standing in
for the 4.34.2 the ``pulumi-kubernetes`` wheel asks for (see the comment at ``PROVIDER_VERSION``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devtools.go_build import TOOLS_DIR, Go, Progress, Stamp, ToolchainError, file_sha256, sha256, tail
from infra import engine
from local.paths import MAIN_VENV, REPO_ROOT

PULUMI_HOME = engine.PULUMI_HOME

CLI_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
CLI_PACKAGE = f"{CLI_MODULE}/cmd/pulumi"
# The SDK in requirements/main.txt is 3.272.0; the proxy serves sdk/v3 at that version but not pkg/v3 (its list goes
# v3.260.0 -> v3.274.0 -> v3.274.1). The nearest newer CLI is the supported direction (a CLI runs older SDKs).
# The Python language host (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is refused at every
# version: `go list -m ...pulumi-language-python/v3@v3.274.1` -> "403 Forbidden, This module version is not
# available". Hence no `pulumi-language-python` binary: the render tier runs the program inline (Automation API), where
# the Python SDK serves the language runtime to the engine.
CLI_VERSION = "v3.274.1"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_COMMAND = "cmd/pulumi-resource-kubernetes"
# THE PROVIDER IS NOT THE VERSION THE SDK ASKS FOR. requirements/main.txt pins the pulumi-kubernetes wheel at 4.34.2,
# whose pulumi-plugin.json asks the engine for plugin 4.34.2; the proxy refuses that build
# (`go list -m github.com/pulumi/pulumi-kubernetes/provider/v4@v4.34.2` -> "403 Forbidden, This module version is not
# available", rechecked 2026-11-25). provider/v4 is never tagged (the repo's tags are for the root path), so it has
# only pseudo-versions, and the proxy serves exactly one: commit f47bc2d (2026-01-15, after 4.24.0). We build that,
# install it under its own version (never labelled 4.34.2), and put it on PATH: the engine finds no installed 4.34.2,
# uses the ambient binary (its documented development path) and warns "using pulumi-resource-kubernetes from $PATH".
# So the render tier checks the program and engine with an older provider than `pulumi up` on a real cluster would
# download; the requirements stay as they are (the wheel's types are what the program is written against).
# `Toolchain.describe()`, the render tier's summary and benchmarks/pulumi_render.py print both versions.
PROVIDER_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
PINS_NOTE = (
    "module proxy on 2026-11-25: pkg/v3 v3.272.0 not served (CLI built at v3.274.1); "
    "pulumi-language-python/v3 refused at every version (403; the render tier runs inline programs, where the "
    "Python SDK is the language runtime); provider/v4 v4.34.2 refused (403), served only at "
    "v4.0.0-20260115033456-f47bc2d6f199, which stands in for the 4.34.2 the pulumi-kubernetes wheel asks for"
)
MODULE_PREFIX = "mlstack.local/toolchain"
PYTHON_HELPERS = ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python")


@dataclass(frozen=True)
class Toolchain:
    """A usable Pulumi CLI and Kubernetes provider, and the environment that makes the engine use them."""

    pulumi_root: Path
    """Folder with ``bin/pulumi`` (what ``pulumi.automation.PulumiCommand(root=...)`` takes)."""
    cli_version: str
    cli_source: str
    """``PATH`` or ``built from Go modules``."""
    provider_bin: Path
    provider_version: str
    """The version the provider binary reports and is installed under."""
    wanted_provider_version: str
    """The plugin version the ``pulumi-kubernetes`` Python package asks for."""
    pulumi_home: Path = PULUMI_HOME
    notes: tuple[str, ...] = field(default=())

    @property
    def pulumi(self) -> Path:
        return self.pulumi_root / "bin" / "pulumi"

    @property
    def provider_is_ambient(self) -> bool:
        """True when the built provider is not the version the SDK asks for, so it is put on PATH for the engine."""
        return self.provider_version != self.wanted_provider_version

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for running ``pulumi`` as this checkout runs the engine (``infra/engine.py``): the toolchain's
        own home, the provider on PATH when it stands in for another version, never a plugin download."""
        providers = [self.provider_bin.parent] if self.provider_is_ambient else []
        return engine.environment(self.pulumi, providers=providers, home=self.pulumi_home, base=base)

    def describe(self) -> list[str]:
        lines = [
            f"pulumi CLI {self.cli_version} ({self.cli_source}): {self.pulumi}",
            f"kubernetes provider {self.provider_version}: {self.provider_bin}",
            f"PULUMI_HOME {self.pulumi_home}",
        ]
        if self.provider_is_ambient:
            lines.append(
                f"pulumi-kubernetes wants plugin {self.wanted_provider_version}, which the Go module proxy refuses "
                f"(403); the engine uses the built {self.provider_version} from PATH instead (it warns 'using "
                "pulumi-resource-kubernetes from $PATH'); see PROVIDER_VERSION in devtools/pulumi_builds.py"
            )
        lines.extend(self.notes)
        return lines


def wanted_plugin_version() -> str:
    """The Kubernetes plugin version the installed ``pulumi-kubernetes`` wheel asks for (its pulumi-plugin.json)."""
    for plugin_json in sorted(MAIN_VENV.glob("lib/python*/site-packages/pulumi_kubernetes/pulumi-plugin.json")):
        return str(json.loads(plugin_json.read_text())["version"])
    pin = re.search(r"^pulumi-kubernetes==(\S+)", (REPO_ROOT / "requirements" / "main.txt").read_text(), re.M)
    if pin is None:
        raise ToolchainError("pulumi-kubernetes is neither installed in .venv nor pinned in requirements/main.txt")
    return pin.group(1)


def _remote_replaces(go_mod: str) -> list[str]:
    """The replace directives of a go.mod that point at other modules (local ``=> ../x`` ones only work upstream)."""
    body = re.sub(r"//.*", "", go_mod)
    entries: list[str] = []
    for block in re.findall(r"^replace\s*\((.*?)^\)", body, re.M | re.S):
        entries.extend(line.strip() for line in block.splitlines() if line.strip())
    entries.extend(m.strip() for m in re.findall(r"^replace\s+([^(\n].*)$", body, re.M))
    remote = []
    for entry in entries:
        target = entry.split("=>", 1)[1].strip()
        if not target.startswith((".", "/")):
            remote.append(entry)
    return sorted(set(remote))


def _wrapper_go_mod(name: str, go_version: str, requires: dict[str, str], replaces: Sequence[str]) -> str:
    lines = [
        f"// Generated by devtools/pulumi_builds.py: a wrapper module that builds {name} from the module proxy.",
        f"module {MODULE_PREFIX}/{name}",
        "",
        f"go {go_version}",
        "",
        "require (",
        *(f"\t{module} {version}" for module, version in sorted(requires.items())),
        ")",
    ]
    if replaces:
        lines += ["", "replace (", *(f"\t{entry}" for entry in replaces), ")"]
    return "\n".join(lines) + "\n"


def _go_directive(go_version_output: str) -> str:
    found = re.search(r"go(\d+\.\d+)", go_version_output)
    return found.group(1) if found else "1.26"


# -- the three builds -----------------------------------------------------------------------------------------------


def build_cli(go: Go, progress: Progress) -> tuple[Path, str]:
    """Build the pinned CLI into ``.cache/tools/pulumi-<v>/bin`` with the Python helper scripts beside it."""
    root = TOOLS_DIR / f"pulumi-{CLI_VERSION.lstrip('v')}"
    src, bin_dir, log = root / "src", root / "bin", root / "build.log"
    binary = bin_dir / "pulumi"
    helpers = [bin_dir / Path(h).name for h in PYTHON_HELPERS]
    stamp = Stamp(root / "stamp", sha256(CLI_VERSION, go.version, "cli-v1"))
    if stamp.fresh(binary, *helpers):
        return root, "up to date"
    src.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    progress(f"  fetching {CLI_MODULE}@{CLI_VERSION} and {SDK_MODULE}@{CLI_VERSION}")
    pkg = go.download(CLI_MODULE, CLI_VERSION, TOOLS_DIR, log, PINS_NOTE)
    sdk = go.download(SDK_MODULE, CLI_VERSION, TOOLS_DIR, log, PINS_NOTE)
    replaces = _remote_replaces(Path(pkg["GoMod"]).read_text())
    go_mod = _wrapper_go_mod(
        "pulumi", _go_directive(go.version), {CLI_MODULE: CLI_VERSION, SDK_MODULE: CLI_VERSION}, replaces
    )
    (src / "go.mod").write_text(go_mod)
    progress(f"  building {CLI_PACKAGE} (wrapper {src / 'go.mod'}, replaces: {', '.join(replaces) or 'none'})")
    ldflags = f"-s -w -X {SDK_MODULE}/go/common/version.Version={CLI_VERSION}"
    go.run(["build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(binary), CLI_PACKAGE], src, log)
    for helper, target in zip(PYTHON_HELPERS, helpers, strict=True):
        shutil.copyfile(Path(sdk["Dir"]) / helper, target)
        target.chmod(0o755)
    stamp.write()
    return root, "built"


def build_provider(go: Go, progress: Progress) -> tuple[Path, str, str]:
    """Build the Kubernetes provider; returns (binary, semver it reports and is installed under, outcome)."""
    version = PROVIDER_VERSION.lstrip("v")
    root = TOOLS_DIR / f"pulumi-resource-kubernetes-{version}"
    src, log = root / "src", root / "build.log"
    binary = root / "bin" / "pulumi-resource-kubernetes"
    stamp = Stamp(root / "stamp", sha256(PROVIDER_VERSION, go.version, "provider-v1"))
    if stamp.fresh(binary):
        return binary, version, "up to date"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    binary.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    progress(f"  fetching {PROVIDER_MODULE}@{PROVIDER_VERSION}")
    module = go.download(PROVIDER_MODULE, PROVIDER_VERSION, TOOLS_DIR, log, PINS_NOTE)
    command = Path(module["Dir"]) / PROVIDER_COMMAND
    # The command's package (main.go, generate.go and the checked-in schema) becomes our wrapper's main package.
    for item in command.iterdir():
        if item.is_file():
            shutil.copyfile(item, src / item.name)
    replaces = _remote_replaces(Path(module["GoMod"]).read_text())
    (src / "go.mod").write_text(
        _wrapper_go_mod(
            "pulumi-resource-kubernetes", _go_directive(go.version), {PROVIDER_MODULE: PROVIDER_VERSION}, replaces
        )
    )
    progress("  generating schema-embed.json and terraform-mapping-embed.json (the provider's own generate.go)")
    go.run(["run", "-v", "generate.go"], src, log, env={"VERSION": version})
    for embedded_file in ("schema-embed.json", "terraform-mapping-embed.json"):
        if not (src / embedded_file).exists():
            raise ToolchainError(f"generate.go did not write {embedded_file}; see {log}")
    progress(f"  building {PROVIDER_MODULE}/{PROVIDER_COMMAND} (wrapper {src / 'go.mod'})")
    ldflags = f"-s -w -X {PROVIDER_MODULE}/pkg/version.Version={version}"
    go.run(["build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(binary), "."], src, log)
    stamp.write()
    return binary, version, "built"


def _pulumi(toolchain: Toolchain, *args: str) -> str:
    result = subprocess.run(
        [str(toolchain.pulumi), *args], env=toolchain.env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ToolchainError(f"`pulumi {' '.join(args[:4])}` failed: {tail(result.stderr or result.stdout)}")
    return result.stdout


def install_provider(toolchain: Toolchain) -> str:
    """``pulumi plugin install resource kubernetes <v> --file <binary>`` into PULUMI_HOME, unless already there."""
    plugin_dir = toolchain.pulumi_home / "plugins" / f"resource-kubernetes-v{toolchain.provider_version}"
    stamp = Stamp(plugin_dir.with_name(plugin_dir.name + ".mlstack-sha256"), file_sha256(toolchain.provider_bin))
    if stamp.fresh(plugin_dir / "pulumi-resource-kubernetes"):
        return "up to date"
    toolchain.pulumi_home.mkdir(parents=True, exist_ok=True)
    _pulumi(
        toolchain, "plugin", "install", "resource", "kubernetes", toolchain.provider_version, "--file",
        str(toolchain.provider_bin), "--reinstall",
    )  # fmt: skip
    stamp.write()
    return f"installed as resource-kubernetes-v{toolchain.provider_version}"


def cli_on_path() -> tuple[Path, str] | None:
    """An installed ``pulumi`` (not ours) and its version, if there is one."""
    found = shutil.which("pulumi")
    if found is None or Path(found).resolve().is_relative_to(TOOLS_DIR.resolve()):
        return None
    result = subprocess.run([found, "version"], capture_output=True, text=True, check=False)
    return Path(found).resolve().parent.parent, (result.stdout.strip() or "unknown")
