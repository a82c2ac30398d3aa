"""Shared fixtures. Tests live in one folder per tier (unit/, manifests/, local/, render/, kind/) and get that
tier's marker from the folder, so `pytest -m local` selects by tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.services import EmbeddedServices
from local.settings import EmbeddedSettings

TIERS = ("unit", "manifests", "local", "render", "kind")


# The local tier's modules in lifecycle order: later stages reuse what earlier session fixtures built (a streamed
# component, a trained model), and the streaming tests reset the stream they share, so they must come first.
LOCAL_ORDER = (
    "test_embedded_services",
    "test_streaming",
    "test_freshness_metrics",  # reads the fraud stream's running pusher, which test_serving's servers stop
    "test_training",
    "test_retraining",  # before test_serving serves fraud: its run ends without a canary
    "test_serving",
    "test_demo",
    "test_scaffold_lifecycle",
)


def _lifecycle_position(item: pytest.Item) -> tuple[int, int]:
    tier = Path(str(item.fspath)).parent.name
    stem = Path(str(item.fspath)).stem
    local = LOCAL_ORDER.index(stem) if tier == "local" and stem in LOCAL_ORDER else len(LOCAL_ORDER)
    return (TIERS.index(tier) if tier in TIERS else len(TIERS), local)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
    items.sort(key=_lifecycle_position)  # stable: keeps each module's own order


def isolated_settings(state_dir: Path) -> EmbeddedSettings:
    return EmbeddedSettings.on_free_ports(state_dir)


def settings_env(s: EmbeddedSettings) -> dict[str, str]:
    """The environment that points the `mlstack` CLI (EmbeddedSettings.from_env) at these settings."""
    return s.environment()


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """One running service set (Kafka, Redis, MLflow) shared by the local tier; stopped at the end."""
    services = EmbeddedServices(isolated_settings(tmp_path_factory.mktemp("state")))
    services.up(progress=lambda line: print(f"[services] {line}"))
    yield services
    services.down(progress=lambda line: print(f"[services] {line}"))
