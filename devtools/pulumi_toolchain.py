"""``make tools``: the pinned Pulumi engine for the render tier, built from Go modules when none is installed.

The official installers cannot be reached from the development machines or CI, but the Pulumi CLI and the Kubernetes
provider are Go modules, and the Go module proxy is reachable. This module

1. uses ``pulumi`` from ``PATH`` when there is one, else builds the CLI (``github.com/pulumi/pulumi/pkg/v3/cmd/pulumi``)
   in a small wrapper module of our own: ``pkg/v3``'s go.mod has replace directives, so ``go install pkg@version`` is
   refused; the wrapper requires ``pkg/v3`` and ``sdk/v3`` at one version and copies pkg/v3's non-local replaces;
2. puts the Python helper scripts that ship in the ``sdk/v3`` module (``pulumi-language-python-exec``,
   ``pulumi-resource-pulumi-python`` for dynamic providers) beside the CLI;
3. builds the Kubernetes provider from ``github.com/pulumi/pulumi-kubernetes/provider/v4``: its ``main.go`` embeds
   ``schema-embed.json`` and ``terraform-mapping-embed.json``, which the upstream build makes with ``go generate``
   (``generate.go`` stamps the version into the checked-in ``schema.json``); we copy the command's package into a
   wrapper module, run that same ``generate.go``, then build;
4. installs the provider into a project-local ``PULUMI_HOME`` with ``pulumi plugin install resource kubernetes
   <version> --file <binary>``; automatic plugin acquisition stays off, so nothing is ever downloaded by the engine.

Everything lands in ``.cache/tools/<name>-<version>/``, stamped by its inputs, so a second run only checks stamps; the
Go module and build caches (the machine's, untouched) make a rebuild after a version bump cheaper. Standard library
only: ``make test`` starts it in the background and ``make tools`` runs it in the foreground (never ``make setup``, so
the demo builds nothing it does not use).

Version pins are limited by what the module proxy serves (checked 2026-11-25, see ``PINS_NOTE``): the Kubernetes
provider is a pseudo-version build standing in for the 4.34.2 the ``pulumi-kubernetes`` wheel asks for (see the comment
at ``PROVIDER_VERSION``).

For the render tier, ``locate()`` is strict: it gives a reason to skip only when Go is missing (nothing could have
built the engine); a failed build, a binary missing after a finished build or a toolchain built for other pins raises
``ToolchainError`` with the build log's tail, so the tier fails instead of silently skipping. ``report.json`` keeps
the newest build of each part (cold or after a pin bump) apart from the recent warm runs, and failed runs too.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from local.paths import CACHE_DIR, MAIN_VENV, REPO_ROOT
from local.progress import Phases, for_stream, line_phases

TOOLS_DIR = CACHE_DIR / "tools"
PULUMI_HOME = TOOLS_DIR / "pulumi-home"
FAILURE_FILE = TOOLS_DIR / "unavailable.txt"
REPORT_FILE = TOOLS_DIR / "report.json"

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
Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """The toolchain could not be built or is unusable; the message says why and what to do."""


class GoMissing(ToolchainError):
    """No Go toolchain: the one case in which the render tier skips (nothing could build the engine here)."""


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
        """Environment for running ``pulumi``: local home, no update check, never download a plugin."""
        env = dict(os.environ if base is None else base)
        path = [str(self.pulumi.parent)]
        if self.provider_is_ambient:
            path.append(str(self.provider_bin.parent))
        path.append(str(MAIN_VENV / "bin"))  # python3 with the pulumi SDK, for the helper scripts
        env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
        env["PULUMI_HOME"] = str(self.pulumi_home)
        env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
        env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
        env.pop("PULUMI_IGNORE_AMBIENT_PLUGINS", None)
        return env

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
                "pulumi-resource-kubernetes from $PATH'); see PROVIDER_VERSION in devtools/pulumi_toolchain.py"
            )
        lines.extend(self.notes)
        return lines


@dataclass
class StepReport:
    """One part of a ``make tools`` run (``pulumi CLI``, ``kubernetes provider``, ``plugin install``)."""

    name: str
    outcome: str
    seconds: float
    built: bool = False
    """True when the part was (re)built: its stamp was missing or stale. False: a warm run that only checked stamps."""
    packages_compiled: int = 0
    """Packages ``go build -v`` / ``go run -v`` compiled: most of the dependency graph when Go's build cache was
    cold, a handful when it was warm (so a "built" step says which kind of build it timed)."""
    modules_downloaded: int = 0
    """Modules ``go`` downloaded into the module cache during the step (0 when the cache had them all)."""


# -- small helpers ---------------------------------------------------------------------------------------------------


def _sha256(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
    return sha.hexdigest()


def _file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def wanted_plugin_version() -> str:
    """The Kubernetes plugin version the installed ``pulumi-kubernetes`` wheel asks for (its pulumi-plugin.json)."""
    for plugin_json in sorted(MAIN_VENV.glob("lib/python*/site-packages/pulumi_kubernetes/pulumi-plugin.json")):
        return str(json.loads(plugin_json.read_text())["version"])
    pin = re.search(r"^pulumi-kubernetes==(\S+)", (REPO_ROOT / "requirements" / "main.txt").read_text(), re.M)
    if pin is None:
        raise ToolchainError("pulumi-kubernetes is neither installed in .venv nor pinned in requirements/main.txt")
    return pin.group(1)


def go_binary() -> Path:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if found is None:
        raise GoMissing("Go not found: install Go 1.26+ (https://go.dev/dl/) to build the Pulumi CLI and provider")
    return Path(found)


# What `go build -v` prints for each package it compiles (an import path), as opposed to its other messages.
_PACKAGE_LINE = re.compile(r"^[\w.~+-]+(/[\w.~+-]+)*$")


class Go:
    """Runs the go command with module mode on, keeping the machine's GOPROXY, caches and flags; a build shows
    the packages it compiled so far in a ``phases`` phase (a bar on a terminal, a line every few seconds in a log)."""

    def __init__(self, binary: Path, progress: Progress, phases: Phases | None = None) -> None:
        self.binary = binary
        self.progress = progress
        self.phases = phases or line_phases(progress)
        self.version = self._output(["version"]).strip()
        flags = self._output(["env", "GOFLAGS"]).split()
        for flag in ("-mod=mod", "-buildvcs=false"):
            if flag.split("=")[0] not in {f.split("=")[0] for f in flags}:
                flags.append(flag)
        self.env = {**os.environ, "GOFLAGS": " ".join(flags)}
        self.packages_compiled = 0
        self.modules_downloaded = 0

    def _output(self, args: list[str]) -> str:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ToolchainError(f"`go {' '.join(args)}` failed: {_tail(result.stderr)}")
        return result.stdout

    def run(self, args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> str:
        """Run ``go args`` in ``cwd``, appending all output to ``log``; a build or run shows its progress."""
        compiling = args[0] in ("build", "run")
        lines: list[str] = []
        with log.open("a") as sink, self.phases(f"  go {args[0]}") as phase:
            sink.write(f"$ go {' '.join(args)}\n")
            if compiling:  # the number of packages is not known before: a count, its rate and the time so far
                phase.start(None, "packages")
            downloaded = 0
            process = subprocess.Popen(
                [str(self.binary), *args],
                cwd=cwd,
                env={**self.env, **(env or {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                sink.write(line)
                lines.append(line)
                if line.startswith("go: downloading "):
                    self.modules_downloaded += 1
                    downloaded += 1
                    phase.update(phase.completed, f"{downloaded} modules downloaded")
                elif compiling and _PACKAGE_LINE.match(line):
                    self.packages_compiled += 1
                    phase.advance(1)
            code = process.wait()
            if code != 0:
                raise ToolchainError(
                    f"`go {' '.join(args[:3])}` failed (exit {code}), see {log}:\n{_tail(''.join(lines))}"
                )
        return "".join(lines)

    def download(self, module: str, version: str, cwd: Path, log: Path) -> dict[str, str]:
        """Fetch ``module@version`` into the module cache; returns ``go mod download -json`` (Dir, GoMod, ...)."""
        output = self.run(["mod", "download", "-json", f"{module}@{version}"], cwd, log)
        info: dict[str, str] = json.loads(output[output.index("{") :])
        if info.get("Error"):
            raise ToolchainError(f"{module}@{version}: {info['Error']} ({PINS_NOTE})")
        return info


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
        f"// Generated by devtools/pulumi_toolchain.py: a wrapper module that builds {name} from the module proxy.",
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


@dataclass(frozen=True)
class _Stamp:
    path: Path
    digest: str

    def fresh(self, *outputs: Path) -> bool:
        return all(p.exists() for p in outputs) and self.path.exists() and self.path.read_text() == self.digest

    def write(self) -> None:
        self.path.write_text(self.digest)


# -- the three builds ------------------------------------------------------------------------------------------------


def build_cli(go: Go, progress: Progress) -> tuple[Path, str]:
    """Build the pinned CLI into ``.cache/tools/pulumi-<v>/bin`` with the Python helper scripts beside it."""
    root = TOOLS_DIR / f"pulumi-{CLI_VERSION.lstrip('v')}"
    src, bin_dir, log = root / "src", root / "bin", root / "build.log"
    binary = bin_dir / "pulumi"
    helpers = [bin_dir / Path(h).name for h in PYTHON_HELPERS]
    stamp = _Stamp(root / "stamp", _sha256(CLI_VERSION, go.version, "cli-v1"))
    if stamp.fresh(binary, *helpers):
        return root, "up to date"
    src.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    progress(f"  fetching {CLI_MODULE}@{CLI_VERSION} and {SDK_MODULE}@{CLI_VERSION}")
    pkg = go.download(CLI_MODULE, CLI_VERSION, TOOLS_DIR, log)
    sdk = go.download(SDK_MODULE, CLI_VERSION, TOOLS_DIR, log)
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
    stamp = _Stamp(root / "stamp", _sha256(PROVIDER_VERSION, go.version, "provider-v1"))
    if stamp.fresh(binary):
        return binary, version, "up to date"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    binary.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    progress(f"  fetching {PROVIDER_MODULE}@{PROVIDER_VERSION}")
    module = go.download(PROVIDER_MODULE, PROVIDER_VERSION, TOOLS_DIR, log)
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
        raise ToolchainError(f"`pulumi {' '.join(args[:4])}` failed: {_tail(result.stderr or result.stdout)}")
    return result.stdout


def install_provider(toolchain: Toolchain) -> str:
    """``pulumi plugin install resource kubernetes <v> --file <binary>`` into PULUMI_HOME, unless already there."""
    plugin_dir = toolchain.pulumi_home / "plugins" / f"resource-kubernetes-v{toolchain.provider_version}"
    stamp = _Stamp(plugin_dir.with_name(plugin_dir.name + ".mlstack-sha256"), _file_sha256(toolchain.provider_bin))
    if stamp.fresh(plugin_dir / "pulumi-resource-kubernetes"):
        return "up to date"
    toolchain.pulumi_home.mkdir(parents=True, exist_ok=True)
    _pulumi(
        toolchain, "plugin", "install", "resource", "kubernetes", toolchain.provider_version, "--file",
        str(toolchain.provider_bin), "--reinstall",
    )  # fmt: skip
    stamp.write()
    return f"installed as resource-kubernetes-v{toolchain.provider_version}"


def _cli_on_path() -> tuple[Path, str] | None:
    """An installed ``pulumi`` (not ours) and its version, if there is one."""
    found = shutil.which("pulumi")
    if found is None or Path(found).resolve().is_relative_to(TOOLS_DIR.resolve()):
        return None
    result = subprocess.run([found, "version"], capture_output=True, text=True, check=False)
    return Path(found).resolve().parent.parent, (result.stdout.strip() or "unknown")


# -- orchestration ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _timed(name: str, reports: list[StepReport], progress: Progress, go: Go | None = None) -> Iterator[StepReport]:
    """Time one part; the caller fills in its outcome. A failing part is recorded too (outcome ``failed: ...``)."""
    progress(f"tools: {name} ...")
    step = StepReport(name, "done", 0.0)
    compiled, downloaded = (go.packages_compiled, go.modules_downloaded) if go is not None else (0, 0)
    started = time.monotonic()
    try:
        yield step
    except ToolchainError as error:
        step.outcome = f"failed: {str(error).splitlines()[0]}"
        raise
    finally:
        step.seconds = round(time.monotonic() - started, 1)
        if go is not None:
            step.packages_compiled = go.packages_compiled - compiled
            step.modules_downloaded = go.modules_downloaded - downloaded
        reports.append(step)
        progress(f"tools: {name}: {step.outcome} ({step.seconds:.1f}s)")


@contextlib.contextmanager
def _exclusive(progress: Progress) -> Iterator[None]:
    """One build at a time per checkout: a second ``make tools`` waits, showing the running build's progress from its
    log, then finds the stamps fresh."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"tools: another toolchain build is running in this checkout; following its log {BUILD_LOG}")
            _follow_until_unlocked(lock, BUILD_LOG, progress)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _follow_until_unlocked(lock: IO[str], log: Path, progress: Progress, poll_s: float = 1.0) -> None:
    """Take ``lock`` once the build holding it ends, passing on the lines that build writes to ``log`` meanwhile."""
    offset = log.stat().st_size if log.exists() else 0
    while True:
        if log.exists() and log.stat().st_size > offset:
            with log.open(errors="replace") as handle:
                handle.seek(offset)
                for line in handle.read().splitlines():
                    progress(line)
                offset = handle.tell()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(poll_s)


def ensure(progress: Progress = print, phases: Phases | None = None) -> Toolchain:
    """Make the toolchain available (building what is missing) and record what it did and how long it took;
    ``phases`` shows the Go builds (default: a few lines via ``progress``)."""
    with _exclusive(progress):
        return _ensure(progress, phases)


def _ensure(progress: Progress, phases: Phases | None) -> Toolchain:
    reports: list[StepReport] = []
    began = time.monotonic()
    go_version = ""
    try:
        wanted = wanted_plugin_version()
        notes: list[str] = []
        go = Go(go_binary(), progress, phases)
        go_version = go.version.strip()
        on_path = _cli_on_path()
        with _timed("pulumi CLI", reports, progress, go) as step:
            if on_path is not None:
                root, cli_version, source = on_path[0], on_path[1], "PATH"
                step.outcome = f"using {root / 'bin' / 'pulumi'} ({cli_version}) from PATH"
            else:
                root, built = build_cli(go, progress)
                cli_version, source = CLI_VERSION, "built from Go modules"
                step.outcome, step.built = f"{built}: {root / 'bin' / 'pulumi'}", built == "built"
                notes.append(
                    "no pulumi-language-python binary (its Go module is refused by the proxy, 403): programs run "
                    "inline through the Automation API, where the Python SDK serves the language runtime to the engine"
                )
        with _timed("kubernetes provider", reports, progress, go) as step:
            provider_bin, provider_version, built = build_provider(go, progress)
            step.outcome, step.built = f"{built}: {provider_bin}", built == "built"
        toolchain = Toolchain(
            pulumi_root=root,
            cli_version=cli_version,
            cli_source=source,
            provider_bin=provider_bin,
            provider_version=provider_version,
            wanted_provider_version=wanted,
            pulumi_home=PULUMI_HOME,
            notes=tuple(notes),
        )
        with _timed("plugin install", reports, progress) as step:
            step.outcome = install_provider(toolchain)
            step.built = step.outcome != "up to date"
    except ToolchainError as error:
        FAILURE_FILE.write_text(str(error).splitlines()[0] + "\n" + str(error))
        _record(reports, time.monotonic() - began, go_version, error=str(error))
        raise
    FAILURE_FILE.unlink(missing_ok=True)
    total = time.monotonic() - began
    (TOOLS_DIR / "toolchain.json").write_text(json.dumps(_to_json(toolchain), indent=2))
    _record(reports, total, go_version)
    for line in toolchain.describe():
        progress(f"tools: {line}")
    progress(f"tools: done in {total:.1f}s")
    return toolchain


def _to_json(toolchain: Toolchain) -> dict[str, object]:
    data = asdict(toolchain)
    return {k: str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


KEEP_RUNS = 10


def read_report(path: Path | None = None) -> dict[str, Any]:
    """``report.json``: ``builds`` (the newest build of each part, by part name, kept however many warm runs follow),
    ``runs`` (the last ``KEEP_RUNS`` runs, warm or not) and ``failures`` (the last ``KEEP_RUNS`` failed runs).

    Reads the older format too (a plain list of the last runs), taking each part's newest build from it.
    """
    path = REPORT_FILE if path is None else path
    data: Any = json.loads(path.read_text()) if path.exists() else {}
    if isinstance(data, list):  # the first format: the last runs only
        data = {"runs": data, "builds": {}, "failures": []}
        for run in data["runs"]:
            for step in run["steps"]:
                if str(step["outcome"]).startswith(("built", "installed")):
                    data["builds"][step["name"]] = {"at": run["at"], **step, "built": True}
    data.setdefault("builds", {})
    data.setdefault("runs", [])
    data.setdefault("failures", [])
    for run in data["runs"]:  # steps of the first format carry no ``built`` flag: their outcome says it
        for step in run["steps"]:
            step.setdefault("built", str(step["outcome"]).startswith(("built", "installed")))
    return dict(data)


def _record(reports: list[StepReport], total: float, go_version: str, error: str = "") -> None:
    """Add this run to ``report.json`` (read by benchmarks/pulumi_render.py); see ``read_report`` for its layout."""
    report = read_report()
    at = time.strftime("%Y-%m-%d %H:%M:%S")
    run: dict[str, Any] = {
        "at": at,
        "seconds": round(total, 1),
        "outcome": "failed" if error else "ok",
        "go": go_version,
        "steps": [asdict(r) for r in reports],
    }
    if error:
        run["error"] = _tail(error, 12)
        report["failures"] = [*report["failures"], run][-KEEP_RUNS:]
    report["runs"] = [*report["runs"], run][-KEEP_RUNS:]
    for step in reports:
        if step.built and not step.outcome.startswith("failed"):
            report["builds"][step.name] = {"at": at, "go": go_version, **asdict(step)}
    REPORT_FILE.write_text(json.dumps(report, indent=2))


def build_logs(tools_dir: Path | None = None) -> list[Path]:
    """The toolchain's build logs, newest first: the background run's (``build.log``) and each part's."""
    tools_dir = TOOLS_DIR if tools_dir is None else tools_dir
    logs = [tools_dir / "build.log", *tools_dir.glob("pulumi-*/build.log")]
    return sorted((p for p in logs if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def log_tails(tools_dir: Path | None = None, lines: int = 30, logs: int = 2) -> str:
    """The tails of the newest build logs, for a failure message."""
    parts = []
    for log in build_logs(tools_dir)[:logs]:
        text = _tail(log.read_text(errors="replace"), lines)
        parts.append(f"--- last {lines} lines of {log} ---\n{text or '(empty)'}")
    return "\n".join(parts) or "(no build log: `make tools` has not run in this checkout)"


def locate() -> Toolchain | str:
    """The toolchain ``make tools`` built, for the render tier and the benchmark.

    Returns a one-line reason (to skip with) only when Go is missing and nothing usable is built: nothing could build
    the engine here. Everything else is a failure the caller must not hide, so it raises ``ToolchainError`` with the
    build logs' tails: a failed build, no build at all, a binary missing after a finished build, or a toolchain
    built for other pins than this checkout's.
    """
    tools_dir = TOOLS_DIR  # read at call time (tests point it elsewhere)
    failure = tools_dir / FAILURE_FILE.name
    recorded = tools_dir / "toolchain.json"
    try:
        go_binary()
        no_go = ""
    except GoMissing as error:
        no_go = str(error)
    if failure.exists():
        if no_go:
            return no_go
        raise ToolchainError(
            f"the Pulumi toolchain build failed: {failure.read_text().splitlines()[0]}\n"
            f"rerun `make tools` after fixing it\n{log_tails(tools_dir)}"
        )
    if not recorded.exists():
        if no_go:
            return no_go
        raise ToolchainError(f"the Pulumi toolchain is not built: run `make tools`\n{log_tails(tools_dir)}")
    data = json.loads(recorded.read_text())
    toolchain = Toolchain(
        pulumi_root=Path(data["pulumi_root"]),
        cli_version=data["cli_version"],
        cli_source=data["cli_source"],
        provider_bin=Path(data["provider_bin"]),
        provider_version=data["provider_version"],
        wanted_provider_version=data["wanted_provider_version"],
        pulumi_home=Path(data["pulumi_home"]),
        notes=tuple(data["notes"]),
    )
    missing = [str(p) for p in (toolchain.pulumi, toolchain.provider_bin) if not p.exists()]
    if missing:
        raise ToolchainError(
            f"the Pulumi toolchain build finished but {', '.join(missing)} is missing: run `make tools`\n"
            + log_tails(tools_dir)
        )
    stale = []
    if toolchain.cli_source != "PATH" and toolchain.cli_version != CLI_VERSION:
        stale.append(f"CLI {toolchain.cli_version} (pinned: {CLI_VERSION})")
    if toolchain.provider_version != PROVIDER_VERSION.lstrip("v"):
        stale.append(f"provider {toolchain.provider_version} (pinned: {PROVIDER_VERSION})")
    if stale:
        raise ToolchainError(f"the built Pulumi toolchain is not this checkout's: {'; '.join(stale)}; run `make tools`")
    return toolchain


BUILD_LOG = TOOLS_DIR / "build.log"


def _build_running() -> bool:
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def start_background_build() -> str:
    """For ``make test``: build the toolchain in the background, at the lowest CPU priority, so a cold build (tens
    of minutes on 2 cores) overlaps the other tiers instead of preceding them; the render tier, which runs last,
    waits for it. Never fails the caller."""
    if _build_running():
        return f"a build is already running (log: {BUILD_LOG})"
    with contextlib.suppress(ToolchainError):
        if isinstance(locate(), Toolchain):  # built for this checkout's pins: nothing to start
            return f"up to date ({TOOLS_DIR})"
    FAILURE_FILE.unlink(missing_ok=True)
    with BUILD_LOG.open("w") as log:
        # Detached and writing to its own log: it must not hold the caller's output open (a CI log pipe would wait).
        subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "devtools.pulumi_toolchain"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    time.sleep(1)  # let it take the lock, so a waiter that starts right after sees the build as running
    return f"building in the background at low priority (log: {BUILD_LOG}); the render tier waits for it"


def wait_for_build(timeout_s: float, progress: Progress = print) -> bool:
    """Block until no toolchain build is running in this checkout; False if one still runs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while _build_running():
        if not announced:
            progress(f"tools: waiting for the toolchain build in the background (log: {BUILD_LOG})")
            announced = True
        if time.monotonic() > deadline:
            return False
        time.sleep(5)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.pulumi_toolchain", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the toolchain is built, build nothing")
    parser.add_argument(
        "--background", action="store_true", help="build in the background at low priority (make test), log to a file"
    )
    args = parser.parse_args(argv)
    if args.background:
        print(f"tools: Pulumi toolchain for the render tier: {start_background_build()}", flush=True)
        return 0
    if args.check:
        try:
            found = locate()
        except ToolchainError as error:
            print(f"tools: {error}")
            return 1
        if isinstance(found, str):
            print(f"tools: {found}")
            return 1
        print("\n".join(f"tools: {line}" for line in found.describe()))
        return 0
    # A bar on a terminal when rich can be imported (this runs on the system python too); lines otherwise, which
    # is what the background build writes to its log and a waiting `make tools` follows.
    emit, phases = for_stream(sys.stdout)
    try:
        ensure(progress=emit, phases=phases)
    except ToolchainError as error:
        print(f"tools: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
