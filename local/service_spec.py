"""What the supervisor needs to know to run one embedded service."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceSpec:
    """One long-running local process and how to tell that it is ready."""

    name: str
    """Program name in the supervisor and in status tables."""
    command: tuple[str, ...]
    """argv of the process; it must stay in the foreground."""
    ports: tuple[int, ...]
    """TCP ports it binds on 127.0.0.1; checked free before start."""
    probe: Callable[[], bool]
    """Returns True once the service answers real requests (not just an open port)."""
    url: str
    """Where a person or a client reaches it."""
    startup_timeout: float = 90.0
    """Seconds to wait for ``probe`` before giving up."""
    prepare: Callable[[], None] | None = None
    """Runs before each start: writes config, formats storage, refuses corrupt state."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables for the process."""
    stop_timeout: int = 30
    """Seconds between SIGTERM and SIGKILL when stopping."""


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
