"""``make policy-tools``: helm, kube-score and the upstream judges for the manifest tier, built from Go modules.

The manifest tier runs ``helm lint`` / ``helm template`` on the project's charts and the kube-score policy checker on
every object the program produces. Neither has an installer reachable from the development machines or CI, but both
are Go modules the Go module proxy serves, so this builds each once (``go install <module>@<pinned version>``) into
``.cache/tools/<name>-<version>/`` and reuses it afterwards. A tool on ``PATH`` at any version is used as is.

``judges`` is the project's own Go module in ``tests/support/judges`` (upstream validators run on what the program
renders, pinned by its go.mod/go.sum). It is built with ``go build -trimpath`` into ``.cache/tools/judges-<stamp>/``,
the stamp hashing its go.mod, go.sum and sources, so an unchanged module is not rebuilt and a changed one never runs
a stale binary (``find`` only knows the current stamp's).

Standard library only; it never fails the caller: where Go is missing or a build fails it prints why, and the tests
that need the tool skip saying what to install.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = REPO_ROOT / ".cache" / "tools"


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
        digest = hashlib.sha256()
        for path in self.files():
            if path.exists():  # a missing go.sum changes the stamp; the build then says what is wrong
                digest.update(f"{path.relative_to(self.source)}\0".encode() + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]

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
    return shutil.which("go") or next((g for g in ("/usr/local/go/bin/go",) if Path(g).exists()), None)


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
    env = {**os.environ, "GOBIN": str(tool.directory), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    started = time.monotonic()
    result = subprocess.run(
        [go, "install", f"{tool.package}@{tool.version}"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not tool.binary.exists():
        tail = result.stderr.strip().splitlines()[-3:]
        return None, f"{name}: build of {tool.package}@{tool.version} failed: {' / '.join(tail)}"
    return tool.binary, f"{name}: built {tool.version} in {time.monotonic() - started:.0f}s -> {tool.binary}"


def _build_local(tool: LocalTool) -> tuple[Path | None, str]:
    go = _go()
    if go is None:
        return None, f"{tool.name}: not built, Go is missing (install Go to build {tool.source})"
    tool.directory.mkdir(parents=True, exist_ok=True)
    partial = tool.directory / f".{tool.name}.partial"
    # -mod=readonly: the module's go.sum is the pin; a build that would change it fails instead of drifting.
    # -buildvcs=false: the stamp names the sources; the checkout's git state is not the binary's business.
    command = [go, "build", "-trimpath", "-mod=readonly", "-buildvcs=false", "-o", str(partial), "."]
    nice = shutil.which("nice")  # a cold build compiles Kubernetes' API packages: keep the machine usable
    env = {**os.environ, "CGO_ENABLED": "0"}
    started = time.monotonic()
    result = subprocess.run(
        [nice, "-n", "10", *command] if nice else command,
        cwd=tool.source,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not partial.exists():
        tail = result.stderr.strip().splitlines()[-3:]
        return None, f"{tool.name}: build in {tool.source} failed: {' / '.join(tail)}"
    partial.replace(tool.binary)
    for stale in TOOLS_DIR.glob(f"{tool.name}-*"):
        if stale != tool.directory:
            shutil.rmtree(stale, ignore_errors=True)
    return tool.binary, f"{tool.name}: built in {time.monotonic() - started:.0f}s -> {tool.binary}"


def main() -> int:
    for name in [*TOOLS, *LOCAL_TOOLS]:
        _, message = ensure(name)
        print(message)
    return 0  # never fails the caller: tests that need a missing tool skip and say why


if __name__ == "__main__":
    sys.exit(main())
