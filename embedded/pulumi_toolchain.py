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
only: ``make setup`` runs it on the bare interpreter, after the environments exist.

Version pins are limited by what the module proxy serves (checked 2026-11-25, see ``PINS_NOTE``).
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

from embedded.paths import CACHE_DIR, MAIN_VENV, REPO_ROOT

TOOLS_DIR = CACHE_DIR / "tools"
PULUMI_HOME = TOOLS_DIR / "pulumi-home"
FAILURE_FILE = TOOLS_DIR / "unavailable.txt"
REPORT_FILE = TOOLS_DIR / "report.json"

CLI_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
CLI_PACKAGE = f"{CLI_MODULE}/cmd/pulumi"
# The SDK in requirements/main.txt is 3.272.0; the proxy serves sdk/v3 at that version but not pkg/v3 (its list goes
# v3.260.0 -> v3.274.0 -> v3.274.1). The nearest newer CLI is the supported direction (a CLI runs older SDKs).
CLI_VERSION = "v3.274.1"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_COMMAND = "cmd/pulumi-resource-kubernetes"
# provider/v4 is never tagged (the repo's tags are for the root path), so it only has pseudo-versions, and the proxy
# serves exactly one: commit f47bc2d (2026-01-15, after 4.24.0). The pulumi-kubernetes 4.34.2 wheel asks for plugin
# 4.34.2; no build of it is served. We install this build under its own version and let the engine use it as the
# ambient provider (on PATH, the engine's documented development path) rather than label it 4.34.2.
PROVIDER_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
PINS_NOTE = (
    "module proxy on 2026-11-25: pkg/v3 v3.272.0 not served (CLI built at v3.274.1); "
    "pulumi-language-python/v3 not served at all (the render tier runs inline programs, where the Python SDK is the "
    "language runtime); provider/v4 served only at v4.0.0-20260115033456-f47bc2d6f199"
)
MODULE_PREFIX = "mlstack.local/toolchain"
PYTHON_HELPERS = ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python")
HEARTBEAT_SECONDS = 60.0

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """The toolchain could not be built; the message says why and what to do."""


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
                f"pulumi-kubernetes wants plugin {self.wanted_provider_version}, which the module proxy does not "
                f"serve; the engine uses the built {self.provider_version} from PATH (it warns 'using "
                "pulumi-resource-kubernetes from $PATH')"
            )
        lines.extend(self.notes)
        return lines


@dataclass
class StepReport:
    name: str
    outcome: str
    seconds: float


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
        raise ToolchainError("Go not found: install Go 1.26+ (e.g. apt-get install golang-go) to build the Pulumi CLI")
    return Path(found)


class Go:
    """Runs the go command with module mode on, keeping the machine's GOPROXY, caches and flags."""

    def __init__(self, binary: Path, progress: Progress) -> None:
        self.binary = binary
        self.progress = progress
        self.version = self._output(["version"]).strip()
        flags = self._output(["env", "GOFLAGS"]).split()
        for flag in ("-mod=mod", "-buildvcs=false"):
            if flag.split("=")[0] not in {f.split("=")[0] for f in flags}:
                flags.append(flag)
        self.env = {**os.environ, "GOFLAGS": " ".join(flags)}

    def _output(self, args: list[str]) -> str:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ToolchainError(f"`go {' '.join(args)}` failed: {_tail(result.stderr)}")
        return result.stdout

    def run(self, args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> str:
        """Run ``go args`` in ``cwd``, appending all output to ``log``; print a heartbeat during long builds."""
        started = time.monotonic()
        last_beat = started
        lines: list[str] = []
        with log.open("a") as sink:
            sink.write(f"$ go {' '.join(args)}\n")
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
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = now
                    self.progress(f"  ... go {args[0]}: {len(lines)} modules/packages done, {now - started:.0f}s")
            code = process.wait()
        if code != 0:
            raise ToolchainError(f"`go {' '.join(args[:3])}` failed (exit {code}), see {log}:\n{_tail(''.join(lines))}")
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
        f"// Generated by embedded/pulumi_toolchain.py: a wrapper module that builds {name} from the module proxy.",
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
def _timed(name: str, reports: list[StepReport], progress: Progress) -> Iterator[list[str]]:
    progress(f"tools: {name} ...")
    outcome: list[str] = []
    started = time.monotonic()
    yield outcome
    seconds = time.monotonic() - started
    reports.append(StepReport(name, outcome[0] if outcome else "done", round(seconds, 1)))
    progress(f"tools: {name}: {outcome[0] if outcome else 'done'} ({seconds:.1f}s)")


@contextlib.contextmanager
def _exclusive(progress: Progress) -> Iterator[None]:
    """One build at a time per checkout: a second ``make setup``/``make tools`` waits, then finds the stamps fresh."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("tools: another build of the toolchain is running in this checkout; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure(progress: Progress = print) -> Toolchain:
    """Make the toolchain available (building what is missing) and record what it did and how long it took."""
    with _exclusive(progress):
        return _ensure(progress)


def _ensure(progress: Progress) -> Toolchain:
    reports: list[StepReport] = []
    began = time.monotonic()
    try:
        wanted = wanted_plugin_version()
        notes: list[str] = []
        go = Go(go_binary(), progress)
        on_path = _cli_on_path()
        with _timed("pulumi CLI", reports, progress) as outcome:
            if on_path is not None:
                root, cli_version, source = on_path[0], on_path[1], "PATH"
                outcome.append(f"using {root / 'bin' / 'pulumi'} ({cli_version}) from PATH")
            else:
                root, built = build_cli(go, progress)
                cli_version, source = CLI_VERSION, "built from Go modules"
                outcome.append(f"{built}: {root / 'bin' / 'pulumi'}")
                notes.append(
                    "no pulumi-language-python binary (its Go module is not served): programs run inline through "
                    "the Automation API, where the Python SDK serves the language runtime to the engine"
                )
        with _timed("kubernetes provider", reports, progress) as outcome:
            provider_bin, provider_version, built = build_provider(go, progress)
            outcome.append(f"{built}: {provider_bin}")
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
        with _timed("plugin install", reports, progress) as outcome:
            outcome.append(install_provider(toolchain))
    except ToolchainError as error:
        FAILURE_FILE.write_text(str(error).splitlines()[0] + "\n" + str(error))
        raise
    FAILURE_FILE.unlink(missing_ok=True)
    total = time.monotonic() - began
    (TOOLS_DIR / "toolchain.json").write_text(json.dumps(_to_json(toolchain), indent=2))
    _record(reports, total)
    for line in toolchain.describe():
        progress(f"tools: {line}")
    progress(f"tools: done in {total:.1f}s")
    return toolchain


def _to_json(toolchain: Toolchain) -> dict[str, object]:
    data = asdict(toolchain)
    return {k: str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


def _record(reports: list[StepReport], total: float) -> None:
    """Keep the last runs, so the cold build and a warm repeat can be compared (benchmarks/pulumi_render.py)."""
    history = json.loads(REPORT_FILE.read_text()) if REPORT_FILE.exists() else []
    history.append(
        {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(total, 1), "steps": [asdict(r) for r in reports]}
    )
    REPORT_FILE.write_text(json.dumps(history[-10:], indent=2))


def locate() -> Toolchain | str:
    """The toolchain ``make tools`` built, or a one-line reason why there is none (for a test tier to skip with)."""
    failure = TOOLS_DIR / FAILURE_FILE.name
    if failure.exists():
        return f"the Pulumi toolchain build failed: {failure.read_text().splitlines()[0]} (see `make tools`)"
    recorded = TOOLS_DIR / "toolchain.json"
    if not recorded.exists():
        try:
            go_binary()
        except ToolchainError as error:
            return str(error)
        return "the Pulumi toolchain is not built: run `make tools`"
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
    if not toolchain.pulumi.exists() or not toolchain.provider_bin.exists():
        return "the Pulumi toolchain is incomplete (a binary is missing): run `make tools`"
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


def setup_step() -> str:
    """For ``make setup``: build the toolchain in the background, at the lowest CPU priority, so a cold build (tens
    of minutes on 2 cores) overlaps the other tiers instead of preceding them; the render tier, which runs last,
    waits for it. A warm build finishes in under a second. Never fails setup."""
    if _build_running():
        return f"a build is already running (log: {BUILD_LOG})"
    FAILURE_FILE.unlink(missing_ok=True)
    with BUILD_LOG.open("w") as log:
        # Detached and writing to its own log: it must not hold the caller's output open (a CI log pipe would wait).
        subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "embedded.pulumi_toolchain"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    time.sleep(1)  # let it take the lock, so a waiter that starts right after sees the build as running
    return f"building in the background at low priority (log: {BUILD_LOG}); the render tier waits for it"


def wait_for_build(timeout_s: float, progress: Progress = print) -> None:
    """Block until no toolchain build is running in this checkout (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while _build_running():
        if not announced:
            progress(f"tools: waiting for the toolchain build in the background (log: {BUILD_LOG})")
            announced = True
        if time.monotonic() > deadline:
            return
        time.sleep(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedded.pulumi_toolchain", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the toolchain is built, build nothing")
    args = parser.parse_args(argv)
    if args.check:
        found = locate()
        if isinstance(found, str):
            print(f"tools: {found}")
            return 1
        print("\n".join(f"tools: {line}" for line in found.describe()))
        return 0
    try:
        ensure(progress=lambda line: print(line, flush=True))
    except ToolchainError as error:
        print(f"tools: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
