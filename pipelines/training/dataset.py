"""The training set: a component's labelled examples joined point-in-time with its feature history in Feast,
then split by time into train, validation and holdout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from contract import Component
from contract.model import EVENT_TIMESTAMP
from pipelines.streaming.event_archive import read_events

SPLITS = ("train", "validation", "holdout")


class TrainingDataError(ValueError):
    """The training window holds nothing usable; the message says what to do."""


@dataclass(frozen=True)
class DataWindow:
    """Examples whose timestamp falls in ``[start, end)``; None leaves that side open."""

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @classmethod
    def parse(cls, start: str, end: str) -> DataWindow:
        """From ISO-8601 strings (empty means open), e.g. ``2026-11-25T10:00:00Z``."""

        def stamp(text: str, name: str) -> pd.Timestamp | None:
            if not text:
                return None
            try:
                value = pd.Timestamp(text)
            except ValueError:
                raise TrainingDataError(f"window {name} {text!r} is not an ISO-8601 time") from None
            return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")

        window = cls(stamp(start, "start"), stamp(end, "end"))
        if window.start is not None and window.end is not None and window.start >= window.end:
            raise TrainingDataError(f"window start {start} is not before its end {end}")
        return window

    def label(self) -> str:
        return f"{self.start.isoformat() if self.start else '-inf'}..{self.end.isoformat() if self.end else '+inf'}"


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    """Examples with their features (full names), sorted by time."""
    features: list[str]
    """Feature columns, ``<view>__<feature>``."""
    splits: dict[str, pd.DataFrame] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What a run records about its data: the actual window covered, features, and rows per split."""
        times = self.frame[EVENT_TIMESTAMP]
        return {
            "data_start": times.min().isoformat(),
            "data_end": times.max().isoformat(),
            "rows": len(self.frame),
            **{f"rows_{name}": len(part) for name, part in self.splits.items()},
            "features": self.features,
        }


def examples(component: Component, offline_root: str, window: DataWindow) -> pd.DataFrame:
    """The component's labelled examples from archived events within the window."""
    events = read_events(offline_root)
    if events.empty:
        raise TrainingDataError(
            f"no archived events for {component.name} under {offline_root}: stream some first "
            f"(`make stream-start stream-produce COMPONENT={component.name}`)"
        )
    rows = component.model.examples(events)
    missing = [c for c in (*component.entity_keys(), EVENT_TIMESTAMP, component.model.target) if c not in rows]
    if missing:
        raise TrainingDataError(f"component {component.name!r}: examples() returned no column {', '.join(missing)}")
    times = rows[EVENT_TIMESTAMP]
    keep = pd.Series(True, index=rows.index)
    if window.start is not None:
        keep &= times >= window.start
    if window.end is not None:
        keep &= times < window.end
    rows = rows[keep].sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
    if rows.empty:
        raise TrainingDataError(
            f"training window {window.label()} holds no examples of {component.name} "
            f"(archived events span {pd.to_datetime(times.min())} .. {pd.to_datetime(times.max())})"
        )
    return rows


def join_features(component: Component, store: Any, rows: pd.DataFrame) -> TrainingSet:
    """Point-in-time join: each row gets, per view, the newest window that ended at or before its timestamp
    and is still within the view's TTL (Feast's ``get_historical_features``)."""
    refs = component.feature_refs()
    joined = store.get_historical_features(entity_df=rows, features=refs, full_feature_names=True).to_df()
    joined = joined.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
    features = [ref.replace(":", "__") for ref in refs]
    return TrainingSet(frame=joined, features=features)


def split_by_time(training: TrainingSet, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> TrainingSet:
    """Oldest rows train, the next validate, the newest are the holdout: the model is always judged on a
    future it has not seen. Rows sharing a timestamp stay on one side."""
    frame = training.frame
    times = frame[EVENT_TIMESTAMP]
    cut_train = times.quantile(fractions[0], interpolation="lower")
    cut_validation = times.quantile(fractions[0] + fractions[1], interpolation="lower")
    parts = {
        "train": frame[times <= cut_train],
        "validation": frame[(times > cut_train) & (times <= cut_validation)],
        "holdout": frame[times > cut_validation],
    }
    for name, part in parts.items():
        if part.empty:
            raise TrainingDataError(f"the {name} split is empty: {len(frame)} examples are too few to split by time")
    training.splits = {name: part.reset_index(drop=True) for name, part in parts.items()}
    return training


def build(component: Component, store: Any, offline_root: str, window: DataWindow = DataWindow()) -> TrainingSet:
    """Examples in the window, joined with features, split by time."""
    return split_by_time(join_features(component, store, examples(component, offline_root, window)))
