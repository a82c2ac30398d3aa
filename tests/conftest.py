"""Shared fixtures. Tests live in one folder per tier (unit/, manifests/, local/, render/, kind/) and get that
tier's marker from the folder, so `pytest -m local` selects by tier."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded.services import EmbeddedServices
from embedded.settings import EmbeddedSettings

TIERS = ("unit", "manifests", "local", "render", "kind")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_settings(state_dir: Path) -> EmbeddedSettings:
    """Settings on fresh ports and a private state folder, so tests never touch a developer's running stack."""
    return EmbeddedSettings(
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        mlflow_port=free_port(),
        redis_port=free_port(),
    )


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """One running service set (Kafka, Redis, MLflow) shared by the local tier; stopped at the end."""
    services = EmbeddedServices(isolated_settings(tmp_path_factory.mktemp("state")))
    services.up(progress=lambda line: print(f"[services] {line}"))
    yield services
    services.down(progress=lambda line: print(f"[services] {line}"))
