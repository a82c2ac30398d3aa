"""A component's Feast feature repo, generated from its declarations.

Each feature group becomes a feature view fed by a push source (the streaming side pushes window results) whose
batch source is the offline history (parquet files, one folder per group) used for point-in-time training sets.
Embedded mode: local registry file, Redis online store, file offline store. Cluster mode: SQL registry on
Postgres, Redis online store, offline history on the shared artifact store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from contract import Component, FeatureGroup

DEFINITIONS = '''"""Feast definitions of component {name!r}, generated from its declarations."""

from contract.registry import load
from pipelines.features.feast_repo import feast_objects

# Feast collects module-level objects: bind each entity, source and view to a name of its own.
globals().update({{f"_{{i}}": obj for i, obj in enumerate(feast_objects(load({name!r}), {offline!r}))}})
'''


@dataclass(frozen=True)
class FeastTarget:
    """Where a component's feature store lives."""

    registry: str
    """Path of the registry file, or a ``postgresql+psycopg://`` URI for a SQL registry."""
    redis: str
    """``host:port`` of the Redis online store."""
    offline_root: str
    """Folder (or object-store prefix) holding one parquet folder of history per feature group."""


def feature_store_yaml(component: Component, target: FeastTarget) -> str:
    registry: dict[str, Any] = (
        {"registry_type": "sql", "path": target.registry, "cache_ttl_seconds": 60}
        if "://" in target.registry
        else {"path": target.registry, "cache_ttl_seconds": 60}
    )
    config = {
        "project": component.name,
        "provider": "local",
        "registry": registry,
        "online_store": {"type": "redis", "connection_string": target.redis},
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def push_source_name(component: Component, group: FeatureGroup) -> str:
    return f"{component.name}_{group.name}_push"


def history_path(offline_root: str, group: FeatureGroup) -> str:
    return f"{offline_root.rstrip('/')}/{group.name}"


def feast_objects(component: Component, offline_root: str) -> list[Any]:
    """Entities, sources and feature views of a component."""
    from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64, Int64

    events = component.streaming.events
    entities: dict[str, Entity] = {}
    objects: list[Any] = []
    for group in component.streaming.groups:
        key = group.entity
        if key not in entities:
            kind = events.field(key)
            value_type = ValueType.INT64 if kind and kind.type == "long" else ValueType.STRING
            entities[key] = Entity(name=key.removesuffix("_id"), join_keys=[key], value_type=value_type)
        history = FileSource(
            name=f"{component.name}_{group.name}_history",
            path=history_path(offline_root, group),
            file_format=ParquetFormat(),
            timestamp_field="window_end",
        )
        push = PushSource(name=push_source_name(component, group), batch_source=history)
        schema = [
            Field(name=a.feature_name, dtype=Int64 if a.function == "count" else Float64) for a in group.aggregates
        ]
        view = FeatureView(
            name=group.name,
            entities=[entities[key]],
            # A window result describes the window that ended at its timestamp; older than one more window
            # and it no longer describes the entity's present.
            ttl=timedelta(seconds=group.window.size_s + group.window.slide_s),
            schema=schema,
            source=push,
            online=True,
            description=f"{', '.join(group.feature_names())} of {key} over {group.window.label} windows",
        )
        objects += [history, push, view]
    return [*entities.values(), *objects]


def write_repo(component: Component, folder: Path, target: FeastTarget) -> Path:
    """Write ``feature_store.yaml`` and ``definitions.py`` so ``feast apply`` / ``feast ui`` work in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_store.yaml").write_text(feature_store_yaml(component, target))
    (folder / "definitions.py").write_text(DEFINITIONS.format(name=component.name, offline=target.offline_root))
    return folder


def apply(component: Component, folder: Path, target: FeastTarget) -> Any:
    """Write the repo, register its objects and return the ``FeatureStore``."""
    from feast import FeatureStore

    write_repo(component, folder, target)
    for group in component.streaming.groups:
        if "://" not in target.offline_root:
            Path(history_path(target.offline_root, group)).mkdir(parents=True, exist_ok=True)
    store = FeatureStore(repo_path=str(folder))
    store.apply(feast_objects(component, target.offline_root))
    return store
