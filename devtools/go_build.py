"""The one Go tool builder: find Go, run it with progress and a log, stamp outputs by their inputs, one build at a time.

Used by the Pulumi toolchain (``devtools/pulumi_toolchain.py``: the CLI and provider wrapper modules), the policy
tools and the upstream judges (``devtools/go_tools.py``). Every tool lands in ``TOOLS_DIR/<name>-<version or
stamp>/`` (the folder ``infra/engine.py`` names); the machine's Go module and build caches are used, never cleared.

Standard library only: ``make tools`` and ``make policy-tools`` run it on the bare interpreter.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from infra.engine import TOOLS_DIR
from local.progress import Phases, line_phases

__all__ = ["TOOLS_DIR", "Go", "GoMissing", "Progress", "Stamp", "ToolchainError", "find_go", "go_binary"]

Progress = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A Go tool could not be built or is unusable; the message says why and what to do."""


class GoMissing(ToolchainError):
    """No Go toolchain: the one case in which the render tier skips (nothing could build the engine here)."""


def find_go() -> Path | None:
    """``go`` on PATH, else the official tarball's place."""
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    return Path(found) if found else None


def go_binary() -> Path:
    """The Go binary, or ``GoMissing`` saying what to install."""
    found = find_go()
    if found is None:
        raise GoMissing("Go not found: install Go 1.26+ (https://go.dev/dl/) to build the Pulumi CLI and provider")
    return found


def sha256(*parts: str | bytes) -> str:
    """The digest of ``parts`` in order."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
    return sha.hexdigest()


def file_sha256(path: Path) -> str:
    """The digest of one file's bytes."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def files_digest(root: Path, files: Iterable[Path]) -> str:
    """The digest of files by their path under ``root`` and content; a missing file is left out (so it changes the
    digest, and the build then says what is wrong)."""
    return sha256(*(f"{p.relative_to(root)}\0".encode() + p.read_bytes() + b"\0" for p in files if p.exists()))


def tail(text: str, lines: int = 20) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Stamp:
    """A file holding the digest of what a build's outputs were made from: fresh while inputs and outputs stand."""

    path: Path
    digest: str

    def fresh(self, *outputs: Path) -> bool:
        return all(p.exists() for p in outputs) and self.path.exists() and self.path.read_text() == self.digest

    def write(self) -> None:
        self.path.write_text(self.digest)


# What `go build -v` prints for each package it compiles (an import path), as opposed to its other messages.
_PACKAGE_LINE = re.compile(r"^[\w.~+-]+(/[\w.~+-]+)*$")


class Go:
    """Runs the go command; a build shows the packages it compiled so far in a ``phases`` phase (a bar on a
    terminal, a line every few seconds in a log), and all output goes to a log file.

    ``goflags`` are added to the machine's ``GOFLAGS`` (``go env GOFLAGS``, asked on the first run) unless it sets
    the same flag; with none, the machine's environment is used as it is. ``nice`` lowers the build's priority.
    """

    def __init__(
        self,
        binary: Path,
        progress: Progress,
        phases: Phases | None = None,
        goflags: Sequence[str] = ("-mod=mod", "-buildvcs=false"),
        nice: int | None = None,
    ) -> None:
        self.binary = binary
        self.progress = progress
        self.phases = phases or line_phases(progress)
        self.goflags = tuple(goflags)
        self.nice = nice
        self._version = ""
        self._env: dict[str, str] | None = None
        self.packages_compiled = 0
        self.modules_downloaded = 0

    @property
    def version(self) -> str:
        """``go version`` (part of every stamp: a new Go rebuilds)."""
        if not self._version:
            self._version = self._output(["version"]).strip()
        return self._version

    @property
    def env(self) -> dict[str, str]:
        if self._env is None:
            env = dict(os.environ)
            if self.goflags:
                flags = self._output(["env", "GOFLAGS"]).split()
                given = {f.split("=")[0] for f in flags}
                env["GOFLAGS"] = " ".join([*flags, *(f for f in self.goflags if f.split("=")[0] not in given)])
            self._env = env
        return self._env

    def _output(self, args: list[str]) -> str:
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ToolchainError(f"`go {' '.join(args)}` failed: {tail(result.stderr)}")
        return result.stdout

    def run(self, args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> str:
        """Run ``go args`` in ``cwd``, appending all output to ``log``; a build or run shows its progress (the packages
        ``-v`` names as they compile)."""
        compiling = args[0] in ("build", "run")
        command = [str(self.binary), *args]
        nice = shutil.which("nice") if self.nice is not None else None
        lines: list[str] = []
        with log.open("a") as sink, self.phases(f"  go {args[0]}") as phase:
            sink.write(f"$ go {' '.join(args)}\n")
            if compiling:  # the number of packages is not known before: a count, its rate and the time so far
                phase.start(None, "packages")
            downloaded = 0
            process = subprocess.Popen(
                [nice, "-n", str(self.nice), *command] if nice else command,
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
                    f"`go {' '.join(args[:3])}` failed (exit {code}), see {log}:\n{tail(''.join(lines))}"
                )
        return "".join(lines)

    def download(self, module: str, version: str, cwd: Path, log: Path, note: str = "") -> dict[str, str]:
        """Fetch ``module@version`` into the module cache; returns ``go mod download -json`` (Dir, GoMod, ...)."""
        output = self.run(["mod", "download", "-json", f"{module}@{version}"], cwd, log)
        info: dict[str, str] = json.loads(output[output.index("{") :])
        if info.get("Error"):
            raise ToolchainError(f"{module}@{version}: {info['Error']}" + (f" ({note})" if note else ""))
        return info


@contextlib.contextmanager
def exclusive(lock_path: Path, log: Path, progress: Progress) -> Iterator[None]:
    """One build at a time per checkout: a second one waits, passing on the running build's log, then finds the
    stamps fresh."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"tools: another toolchain build is running in this checkout; following its log {log}")
            _follow_until_unlocked(lock, log, progress)
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


def locked(lock_path: Path) -> bool:
    """Whether a build holds ``lock_path`` right now."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
