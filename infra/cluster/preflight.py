"""Checks a machine must pass before a kind cluster can hold the platform.

Each check returns ``None`` or a one-line problem that says what to do. ``python -m infra.cluster.preflight
[--stack kind]`` runs them against the stack's profile and host ports, ``kindHttpPort`` and ``kindHttpsPort``
(``make up`` does the same before Pulumi starts); the kind provider runs them again before ``kind create``.

Memory, CPU and the host ports are what a *new* cluster needs. Once the stack's kind cluster exists it holds the ports
(its own port mappings) and already uses its memory, so those checks are skipped then (``cluster_exists``): a second
``make up`` on a running cluster must not fail its own preflight.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
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


def _on_path(tool: str, remedy: str) -> str | None:
    return f"{tool} not found: {remedy}" if shutil.which(tool) is None else None


def kind_cli() -> str | None:
    return _on_path("kind", "install it (`go install sigs.k8s.io/kind@v0.30.0`) and put it on PATH")


def gcloud_cli() -> str | None:
    """A GKE stack's provider authenticates with the user's gcloud credentials."""
    return _on_path(
        "gcloud",
        "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then "
        "`gcloud auth application-default login`",
    )


def gke_auth_plugin() -> str | None:
    """The GKE cluster's kubeconfig authenticates through ``gke-gcloud-auth-plugin`` (infra.cluster.gke)."""
    return _on_path(
        "gke-gcloud-auth-plugin",
        "install it (`gcloud components install gke-gcloud-auth-plugin`, or the "
        "google-cloud-cli-gke-gcloud-auth-plugin package) and put it on PATH",
    )


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


def port_free(port: int, key: str = "kindHttpPort") -> Callable[[], str | None]:
    """Whether ``port`` can be bound on 127.0.0.1; the problem names ``key``, the stack config key that sets it."""

    def check() -> str | None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return (
                    f"port {port} is taken (see `ss -ltnp 'sport = :{port}'`): free it or choose another with "
                    f"`pulumi config set {key} <port>`"
                )
        return None

    return check


def architecture() -> str | None:
    machine = platform.machine().lower()
    if machine not in SUPPORTED_ARCHITECTURES:
        return f"architecture {machine} is not supported: kind node images and the platform's images are amd64/arm64"
    return None


def kind_cluster_exists(name: str) -> bool:
    """Whether ``kind get clusters`` lists ``name`` (False when kind is missing or cannot answer)."""
    if shutil.which("kind") is None:
        return False
    result = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
    return result.returncode == 0 and name in result.stdout.split()


CREATION_ONLY = ("memory", "cpu", "port")
"""Checks of what a new cluster takes from the machine; skipped when the cluster already exists."""


def checks(ports: Mapping[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[Check]:
    """The checks for a kind cluster of ``profile`` binding ``ports`` (config key -> host port, as
    ``KindSettings.host_ports``); without the creation-only ones when the cluster already exists (it holds the ports
    and already uses the memory)."""
    every = [
        Check("architecture", architecture),
        Check("docker", docker),
        Check("kind", kind_cli),
        Check("memory", lambda: memory(profile)),
        Check("cpu", lambda: cpu(profile)),
        Check("inotify", inotify),
        *(Check(f"port {port}", port_free(port, key)) for key, port in ports.items()),
    ]
    if not cluster_exists:
        return every
    return [c for c in every if c.name.split()[0] not in CREATION_ONLY]


def problems(ports: Mapping[str, int], profile: Profile = LAPTOP, cluster_exists: bool = False) -> list[str]:
    """Every failing check's problem, in check order."""
    found = []
    for check in checks(ports, profile, cluster_exists):
        problem = check.run()
        if problem:
            found.append(f"{check.name}: {problem}")
    return found


def main(argv: list[str] | None = None) -> int:
    """``[--stack STACK] [PORT]``: the checks for STACK's kind cluster (default: ``$STACK`` or ``kind``), with its
    profile, ``kindHttpPort`` and ``kindHttpsPort`` from ``Pulumi.<STACK>.yaml``; ``PORT`` overrides the HTTP port."""
    import argparse

    from infra.config import ConfigError, parse, stack_settings

    parser = argparse.ArgumentParser(prog="python -m infra.cluster.preflight", description=main.__doc__)
    parser.add_argument("--stack", default=os.environ.get("STACK") or "kind")
    parser.add_argument("port", nargs="?", type=int, help="host port to check instead of the stack's kindHttpPort")
    args = parser.parse_args(argv)
    try:
        config = parse(stack_settings(args.stack))
    except (FileNotFoundError, ConfigError) as error:
        print(f"preflight: {error}", file=sys.stderr)
        return 2
    if config.kind is None:
        print(f"preflight: stack {args.stack} is a {config.cluster} stack; the preflight checks are for kind only")
        return 0
    ports = config.kind.host_ports
    if args.port is not None:
        ports["kindHttpPort"] = args.port
    exists = kind_cluster_exists(config.kind.name)
    found = problems(ports, config.profile, cluster_exists=exists)
    for line in found:
        print(f"preflight: {line}", file=sys.stderr)
    if not found:
        names = ", ".join(c.name for c in checks(ports, config.profile, exists))
        print(f"preflight: ok for stack {args.stack}, profile {config.profile.name} ({names})")
    if exists:
        skipped = ", ".join(f"port {port}" for port in ports.values())
        print(f"preflight: kind cluster {config.kind.name} exists; skipped the memory, cpu, {skipped} checks")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
