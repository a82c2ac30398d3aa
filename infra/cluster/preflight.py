"""Checks a machine must pass before a kind cluster can hold the platform.

Each check returns ``None`` or a one-line problem that says what to do. ``python -m infra.cluster.preflight``
runs them all (``make up`` does, before Pulumi starts); the kind provider runs them again before ``kind create``.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.profiles import LAPTOP, Profile

# kind nodes run kubelet, containerd and the control plane next to the workloads: reserve room for them.
SYSTEM_OVERHEAD_MIB = 1536
SYSTEM_OVERHEAD_MILLICORES = 1000
MIN_INOTIFY_INSTANCES = 512  # kind's known-issues page: "too many open files" below this
MIN_INOTIFY_WATCHES = 524288
SUPPORTED_ARCHITECTURES = ("x86_64", "amd64", "aarch64", "arm64")


@dataclass(frozen=True)
class Check:
    """One named preflight check."""

    name: str
    run: Callable[[], str | None]


def docker() -> str | None:
    if shutil.which("docker") is None:
        return "docker not found: install Docker Engine (or Docker Desktop) and make sure `docker` is on PATH"
    result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if result.returncode != 0:
        return "the Docker daemon is not reachable: start it (`sudo systemctl start docker`) and check `docker info`"
    return None


def kind_cli() -> str | None:
    if shutil.which("kind") is None:
        return "kind not found: install it (`go install sigs.k8s.io/kind@v0.30.0`) and put it on PATH"
    return None


def _meminfo_mib(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def memory(profile: Profile = LAPTOP) -> str | None:
    available = _meminfo_mib("MemAvailable")
    if available is None:
        return None  # not Linux: Docker Desktop's VM size is the limit, and `docker info` reports it
    needed = profile.totals()[1] + SYSTEM_OVERHEAD_MIB
    if available < needed:
        return (
            f"{available} MiB of memory available, the {profile.name} profile needs {needed} MiB: "
            "close other programs or give Docker more memory"
        )
    return None


def cpu(profile: Profile = LAPTOP) -> str | None:
    cores = os.cpu_count() or 1
    needed = profile.totals()[0] + SYSTEM_OVERHEAD_MILLICORES
    if cores * 1000 < needed:
        return f"{cores} CPU cores, the {profile.name} profile requests {needed}m: use a machine with more cores"
    return None


def inotify() -> str | None:
    base = Path("/proc/sys/fs/inotify")
    if not base.exists():
        return None
    instances = int((base / "max_user_instances").read_text())
    watches = int((base / "max_user_watches").read_text())
    if instances < MIN_INOTIFY_INSTANCES or watches < MIN_INOTIFY_WATCHES:
        return (
            f"inotify limits too low (instances {instances}, watches {watches}); raise them: "
            f"`sudo sysctl fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES} "
            f"fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES}`"
        )
    return None


def port_free(port: int) -> Callable[[], str | None]:
    def check() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return (
                    f"port {port} is taken (see `ss -ltnp 'sport = :{port}'`): free it or choose another with "
                    "`pulumi config set kindHttpPort <port>`"
                )
        return None

    return check


def architecture() -> str | None:
    machine = platform.machine().lower()
    if machine not in SUPPORTED_ARCHITECTURES:
        return f"architecture {machine} is not supported: kind node images and the platform's images are amd64/arm64"
    return None


def checks(http_port: int, profile: Profile = LAPTOP) -> list[Check]:
    return [
        Check("architecture", architecture),
        Check("docker", docker),
        Check("kind", kind_cli),
        Check("memory", lambda: memory(profile)),
        Check("cpu", lambda: cpu(profile)),
        Check("inotify", inotify),
        Check(f"port {http_port}", port_free(http_port)),
    ]


def problems(http_port: int, profile: Profile = LAPTOP) -> list[str]:
    """Every failing check's problem, in check order."""
    found = []
    for check in checks(http_port, profile):
        problem = check.run()
        if problem:
            found.append(f"{check.name}: {problem}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    port = int(args[0]) if args else 8080
    found = problems(port)
    for line in found:
        print(f"preflight: {line}", file=sys.stderr)
    if not found:
        print("preflight: ok (architecture, docker, kind, memory, cpu, inotify, ports)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
