"""``make policy-tools``: helm and kube-score for the manifest tier, built from Go modules when not installed.

The manifest tier runs ``helm lint`` / ``helm template`` on the project's charts and the kube-score policy checker on
every object the program produces. Neither has an installer reachable from the development machines or CI, but both
are Go modules the Go module proxy serves, so this builds each once (``go install <module>@<pinned version>``) into
``.cache/tools/<name>-<version>/`` and reuses it afterwards. A tool on ``PATH`` at any version is used as is.

Standard library only; it never fails the caller: where Go is missing or a build fails it prints why, and the tests
that need the tool skip saying what to install.
"""

from __future__ import annotations

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


def find(name: str) -> Path | None:
    """The tool on PATH, else the one built here, else None."""
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    built = TOOLS[name].binary
    return built if built.exists() else None


def missing_reason(name: str) -> str:
    """One line saying how to get the tool, for a test's skip."""
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


def main() -> int:
    for name in TOOLS:
        _, message = ensure(name)
        print(message)
    return 0  # never fails the caller: tests that need a missing tool skip and say why


if __name__ == "__main__":
    sys.exit(main())
