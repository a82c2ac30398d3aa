"""The reference the streaming tests compare against: the same window semantics in plain pandas.

Flink's HOP windows are aligned to the epoch: an event at t belongs to every window [start, start + size) whose
start is a multiple of the slide, and a window's result carries its end as the feature timestamp.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import Component, FeatureGroup


def reference_windows(component: Component, events: list[dict[str, Any]], group: FeatureGroup) -> pd.DataFrame:
    """One row per (entity, window_end) with every aggregate of ``group``, over the events of the kinds it counts
    (every event when it names none)."""
    time_field, kind = component.streaming.events.event_time, component.streaming.events.kind
    if group.kinds and kind is not None:
        events = [e for e in events if e.get(kind) in group.kinds]
    frame = pd.DataFrame(events)
    size, slide = group.window.size_s * 1000, group.window.slide_s * 1000
    latest_start = (frame[time_field] // slide) * slide
    exploded = pd.concat(
        [frame.assign(window_end=latest_start - k * slide + size) for k in range(size // slide)], ignore_index=True
    )
    grouped = exploded.groupby([group.entity, "window_end"])
    columns = {}
    for aggregate in group.aggregates:
        if aggregate.function == "count":
            columns[aggregate.feature_name] = grouped.size()
        else:
            columns[aggregate.feature_name] = grouped[aggregate.field].agg(aggregate.function.replace("avg", "mean"))
    result = pd.DataFrame(columns).reset_index()
    result["window_end"] = pd.to_datetime(result["window_end"], unit="ms", utc=True)
    return result


def offline_history(offline_root: str, group: FeatureGroup) -> pd.DataFrame:
    """Everything pushed to the offline store for a group, deduplicated as training reads it."""
    files = sorted(Path(offline_root, group.name).glob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=[group.entity, "window_end", *group.feature_names()])
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return frame.drop_duplicates([group.entity, "window_end"], keep="last").reset_index(drop=True)


def compare(expected: pd.DataFrame, actual: pd.DataFrame, group: FeatureGroup) -> list[str]:
    """Differences between two window tables, as readable lines (empty when they agree)."""
    keys = [group.entity, "window_end"]
    merged = expected.merge(actual, on=keys, how="outer", suffixes=("_expected", "_actual"), indicator=True)
    problems = []
    missing = merged[merged["_merge"] == "left_only"]
    extra = merged[merged["_merge"] == "right_only"]
    if len(missing):
        problems.append(f"{group.name}: {len(missing)} windows missing, e.g. {missing[keys].head(3).values.tolist()}")
    if len(extra):
        problems.append(f"{group.name}: {len(extra)} unexpected windows, e.g. {extra[keys].head(3).values.tolist()}")
    both = merged[merged["_merge"] == "both"]
    for feature in group.feature_names():
        a, b = both[f"{feature}_expected"].astype(float), both[f"{feature}_actual"].astype(float)
        wrong = ~np.isclose(a, b, rtol=1e-9, atol=1e-9)
        if wrong.any():
            sample = both[wrong][[*keys, f"{feature}_expected", f"{feature}_actual"]].head(3).values.tolist()
            problems.append(f"{group.name}.{feature}: {int(wrong.sum())} windows differ, e.g. {sample}")
    return problems
