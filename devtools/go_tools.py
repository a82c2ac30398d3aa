"""``make policy-tools``: helm, kube-score and the upstream judges for the manifest tier, built from Go modules.

The manifest tier runs ``helm lint`` / ``helm template`` on the project's charts and the kube-score policy checker on
every object the program produces. Neither has an installer reachable from the development machines or CI, but both
are Go modules the Go module proxy serves, so this builds each once (``go install <module>@<pinned version>``) into
``.cache/tools/<name>-<version>/`` and reuses it afterwards. A tool on ``PATH`` at any version is used as is.

``judges`` is the project's own Go module in ``tests/support/judges`` (upstream validators run on what the program
renders, pinned by its go.mod/go.sum). It is built with ``go build -trimpath`` into ``.cache/tools/judges-<stamp>/``,
the stamp hashing its go.mod, go.sum and sources, so an unchanged module is not rebuilt and a changed one never runs
a stale binary (``find`` only knows the current stamp's).

The builds run on the shared Go builder (``devtools/go_build.py``: progress, a ``build.log`` in the tool's folder) and
each run is recorded in ``.cache/tools/policy-tools.json`` (the layout of ``devtools/toolchain_report.py``).

Standard library only; it never fails the caller: where Go is missing or a build fails it prints why, and the tests
that need the tool skip saying what to install.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.go_build import TOOLS_DIR, Go, ToolchainError, files_digest, find_go
from devtools.toolchain_report import StepReport, record
from infra.engine import REPO_ROOT

REPORT_NAME = "policy-tools.json"


@dataclass(frozen=True)
class Tool:
    """A command-line tool built from a Go module at a pinned version."""

    name: str
    package: str
    version: str

    @property
    def directory(self) -> Path:
        return TOOLS_DIR / f"{self.name}-{self.version}"

    @property
    def binary(self) -> Path:
        return self.directory / self.name


TOOLS = {
    "helm": Tool("helm", "helm.sh/helm/v3/cmd/helm", "v3.21.4"),
    "kube-score": Tool("kube-score", "github.com/zegl/kube-score/cmd/kube-score", "v1.20.0"),
}


@dataclass(frozen=True)
class LocalTool:
    """A command built from a Go module in this repository, its dependencies pinned by the module's go.sum."""

    name: str
    source: Path

    def files(self) -> list[Path]:
        """What the binary is built from: go.mod, go.sum and the Go sources."""
        return sorted([self.source / "go.mod", self.source / "go.sum", *self.source.rglob("*.go")])

    @property
    def stamp(self) -> str:
        return files_digest(self.source, self.files())[:16]  # a missing go.sum changes it too

    @property
    def directory(self) -> Path:
        return TOOLS_DIR / f"{self.name}-{self.stamp}"

    @property
    def binary(self) -> Path:
        return self.directory / self.name


LOCAL_TOOLS = {"judges": LocalTool("judges", REPO_ROOT / "tests" / "support" / "judges")}


def find(name: str) -> Path | None:
    """The tool on PATH, else the one built here, else None (a local tool: only the build of its current sources)."""
    if name in LOCAL_TOOLS:
        built = LOCAL_TOOLS[name].binary
        return built if built.exists() else None
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    built = TOOLS[name].binary
    return built if built.exists() else None


def missing_reason(name: str) -> str:
    """One line saying how to get the tool, for a test's skip."""
    if name in LOCAL_TOOLS:
        local = LOCAL_TOOLS[name]
        return (
            f"{name} not built for its current sources: run `make policy-tools` (go build in "
            f"{local.source.relative_to(REPO_ROOT)}; needs Go)"
        )
    tool = TOOLS[name]
    return (
        f"{name} not found: run `make policy-tools` (builds {tool.package}@{tool.version}; needs Go) or install {name}"
    )


def _go() -> str | None:
    found = find_go()
    return str(found) if found else None


def _failure(error: ToolchainError) -> str:
    return " / ".join(str(error).strip().splitlines()[-3:])


def ensure(name: str) -> tuple[Path | None, str]:
    """Find or build the tool; returns (path or None, what happened)."""
    found = find(name)
    if found:
        return found, f"{name}: {found}"
    if name in LOCAL_TOOLS:
        return _build_local(LOCAL_TOOLS[name])
    go = _go()
    tool = TOOLS[name]
    if go is None:
        return None, f"{name}: not built, Go is missing (install Go 1.22+ to build {tool.package}@{tool.version})"
    tool.directory.mkdir(parents=True, exist_ok=True)
    env = {"GOBIN": str(tool.directory), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    started = time.monotonic()
    try:
        Go(Path(go), print, goflags=()).run(
            ["install", f"{tool.package}@{tool.version}"], tool.directory, tool.directory / "build.log", env
        )
    except ToolchainError as error:
        return None, f"{name}: build of {tool.package}@{tool.version} failed: {_failure(error)}"
    if not tool.binary.exists():
        return None, f"{name}: build of {tool.package}@{tool.version} failed: no {tool.binary}"
    return tool.binary, f"{name}: built {tool.version} in {time.monotonic() - started:.0f}s -> {tool.binary}"


def _build_local(tool: LocalTool) -> tuple[Path | None, str]:
    go = _go()
    if go is None:
        return None, f"{tool.name}: not built, Go is missing (install Go to build {tool.source})"
    tool.directory.mkdir(parents=True, exist_ok=True)
    partial = tool.directory / f".{tool.name}.partial"
    # -mod=readonly: the module's go.sum is the pin; a build that would change it fails instead of drifting.
    # -buildvcs=false: the stamp names the sources; the checkout's git state is not the binary's business.
    # -v: the packages it compiles, counted as the build's progress.
    command = ["build", "-trimpath", "-mod=readonly", "-buildvcs=false", "-v", "-o", str(partial), "."]
    # nice: a cold build compiles Kubernetes' API packages; keep the machine usable.
    builder = Go(Path(go), print, goflags=(), nice=10)
    started = time.monotonic()
    try:
        builder.run(command, tool.source, tool.directory / "build.log", {"CGO_ENABLED": "0"})
    except ToolchainError as error:
        return None, f"{tool.name}: build in {tool.source} failed: {_failure(error)}"
    if not partial.exists():
        return None, f"{tool.name}: build in {tool.source} failed: no {partial}"
    partial.replace(tool.binary)
    for stale in TOOLS_DIR.glob(f"{tool.name}-*"):
        if stale != tool.directory:
            shutil.rmtree(stale, ignore_errors=True)
    return tool.binary, f"{tool.name}: built in {time.monotonic() - started:.0f}s -> {tool.binary}"


def main() -> int:
    """Find or build every tool, saying what happened to each, and record the run (never fails the caller)."""
    steps: list[StepReport] = []
    failed: list[str] = []
    began = time.monotonic()
    for name in [*TOOLS, *LOCAL_TOOLS]:
        started = time.monotonic()
        found, message = ensure(name)
        print(message)
        outcome = message.split(": ", 1)[1]
        steps.append(StepReport(name, outcome, round(time.monotonic() - started, 1), outcome.startswith("built")))
        if found is None:
            failed.append(message)
    record(steps, time.monotonic() - began, _go() or "", "\n".join(failed), TOOLS_DIR / REPORT_NAME)
    return 0  # tests that need a missing tool skip and say why


if __name__ == "__main__":
    sys.exit(main())
