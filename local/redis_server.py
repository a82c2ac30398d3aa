"""Redis from Debian's packages: the Feast online store, as in cluster mode."""

from __future__ import annotations

import shutil

from local.errors import EmbeddedError
from local.service_spec import ServiceSpec, port_open
from local.settings import EmbeddedSettings


def redis_ready(settings: EmbeddedSettings) -> bool:
    """True once Redis answers PING."""
    if not port_open(settings.redis_port):
        return False
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=settings.redis_port, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def redis_service(settings: EmbeddedSettings) -> ServiceSpec:
    """Redis as a supervised process, snapshotting into the state folder."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(binary):
        raise EmbeddedError("redis-server is not installed: run `make setup` (installs Debian's redis-server)")
    root = settings.state_dir / "redis"
    command = (
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(settings.redis_port),
        "--dir",
        str(root),
        "--daemonize",
        "no",
        "--save",
        "60 1000",
        "--appendonly",
        "no",
        "--loglevel",
        "notice",
    )
    return ServiceSpec(
        name="redis",
        command=command,
        ports=(settings.redis_port,),
        probe=lambda: redis_ready(settings),
        url=f"redis://{settings.redis_address}",
        startup_timeout=30,
        prepare=lambda: root.mkdir(parents=True, exist_ok=True),
    )
