"""The training set: a component's labelled examples joined point-in-time with its feature history in Feast,
then split by time into train, validation and holdout.

Labels that arrive as their own events (``StreamingSpec.feedback``) are joined to the examples here, each as known
by the training cutoff. Every example keeps its row whatever the feature history holds: a view with no window
within its TTL gives NaN features, exactly what the model server reads for an entity without recent activity."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from contract import Component
from contract.model import EVENT_TIMESTAMP
from contract.tasks import OutputError, encode_target
from pipelines.features.parts import read_parts
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
    unlabelled: int | None = None
    """Examples dropped because their label had not arrived by the training cutoff (None: labels ride in the
    examples themselves, nothing is joined)."""

    def summary(self) -> dict[str, Any]:
        """What a run records about its data: the actual window covered, features, and rows per split (and the
        rows still waiting for their label, when labels arrive as their own events)."""
        times = self.frame[EVENT_TIMESTAMP]
        unlabelled = {} if self.unlabelled is None else {"rows_unlabelled": self.unlabelled}
        return {
            "data_start": times.min().isoformat(),
            "data_end": times.max().isoformat(),
            "rows": len(self.frame),
            **{f"rows_{name}": len(part) for name, part in self.splits.items()},
            **unlabelled,
            "features": self.features,
        }


def examples(component: Component, offline_root: str, window: DataWindow) -> pd.DataFrame:
    """The component's labelled examples from archived events within the window, the target encoded as the
    model learns it (``contract.tasks.encode_target``: class indices for ``multiclass``)."""
    return labelled_examples(component, offline_root, window)[0]


def labelled_examples(component: Component, offline_root: str, window: DataWindow) -> tuple[pd.DataFrame, int | None]:
    """``examples`` and how many of them were dropped for want of a label by the cutoff (None without feedback)."""
    events = read_events(offline_root)
    if events.empty:
        raise TrainingDataError(
            f"no archived events for {component.name} under {offline_root}: stream some first "
            f"(`make stream-start stream-produce COMPONENT={component.name}`)"
        )
    model, feedback = component.model, component.streaming.feedback
    rows = model.examples(events)
    labelled_by = feedback.key if feedback else model.target
    missing = [c for c in (*component.entity_keys(), EVENT_TIMESTAMP, labelled_by) if c not in rows]
    if missing:
        raise TrainingDataError(f"component {component.name!r}: examples() returned no column {', '.join(missing)}")
    if feedback and model.target in rows:
        raise TrainingDataError(
            f"component {component.name!r}: examples() returned the target {model.target!r}, but its labels arrive "
            f"as {feedback.kind!r} events: return the key {feedback.key!r} and the training set joins the label"
        )
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
    unlabelled = None
    if feedback:
        cutoff = window.end if window.end is not None else _newest_event(component, events)
        rows, unlabelled = join_labels(component, events, rows, cutoff)
    try:
        rows[model.target] = encode_target(model, rows[model.target])
    except OutputError as error:
        raise TrainingDataError(f"component {component.name!r}: {error}") from None
    return rows, unlabelled


def _newest_event(component: Component, events: pd.DataFrame) -> pd.Timestamp:
    newest = int(events[component.streaming.events.event_time].max())
    return pd.Timestamp(newest, unit="ms", tz="UTC")


def join_labels(
    component: Component, events: pd.DataFrame, rows: pd.DataFrame, cutoff: pd.Timestamp
) -> tuple[pd.DataFrame, int]:
    """Each example's label as known at ``cutoff``: the newest label event with its key at or before the cutoff
    (a corrected label replaces an earlier one). Examples without one by then are dropped; returns how many.

    A label arriving after the cutoff is unknown to this training run even if it is archived, so retraining an
    earlier window gives the same set. Examples younger than ``max_delay_s`` at the cutoff are dropped whether or
    not their label has come: among them only the quick outcomes have (an order delivered on time is labelled
    sooner than a very late one), so keeping the labelled ones would teach the model that recent orders are on
    time."""
    feedback = component.streaming.feedback
    schema = component.streaming.events
    assert feedback is not None and schema.kind is not None  # the contract's validation guarantees both
    settled = rows[EVENT_TIMESTAMP] <= cutoff - pd.Timedelta(seconds=feedback.max_delay_s)
    young = int((~settled).sum())
    rows = rows[settled]
    if rows.empty:
        raise TrainingDataError(
            f"all {young} examples of {component.name} are younger than {feedback.max_delay_s} s at the cutoff "
            f"{cutoff.isoformat()}: their labels may still come; end the window later"
        )
    cutoff_ms = int(cutoff.timestamp() * 1000)
    labels = events.loc[
        (events[schema.kind] == feedback.kind) & (events[schema.event_time] <= cutoff_ms),
        [feedback.key, feedback.label, schema.event_time],
    ]
    newest = (
        labels.sort_values(schema.event_time, kind="stable")
        .drop_duplicates(feedback.key, keep="last")
        .drop(columns=schema.event_time)
        .rename(columns={feedback.label: component.model.target})
    )
    joined = rows.merge(newest, on=feedback.key, how="left", validate="many_to_one")
    known = joined[component.model.target].notna()
    lost = int((~known).sum())
    print(
        f"training set of {component.name}: {young} examples younger than {feedback.max_delay_s} s at the cutoff "
        f"{cutoff.isoformat()} (their {feedback.kind!r} label may still come) and {lost} of the {len(joined)} older "
        "ones without a label are left out",
        flush=True,
    )
    if not known.any():
        raise TrainingDataError(
            f"none of the {len(joined)} examples of {component.name} older than {feedback.max_delay_s} s at "
            f"{cutoff.isoformat()} has a {feedback.kind!r} label: stream the label events, or end the window later"
        )
    return joined[known].reset_index(drop=True), young + lost


def join_features(component: Component, store: Any, rows: pd.DataFrame) -> TrainingSet:
    """Point-in-time join: each row gets, per view, the newest window that ended at or before its timestamp
    and is still within the view's TTL (Feast's ``get_historical_features``); NaN when there is none, as online.

    Feast's file offline store (0.67) loses rows three ways: it drops an entity row whose entity has windows but
    none within a view's TTL before the row's time (an idle card), losing its other views' features too; it merges
    rows that share the entity keys seen so far and the timestamp; and it fails outright on an entity with no
    window at all once the history spans several files (dask cannot sort the missing timestamps). So it is asked
    once per view, for the distinct (key, time) pairs of entities its history holds, and each answer is joined
    back onto every row: no row is lost or merged, and a view without a window gives NaN."""
    refs = component.feature_refs()
    entity_of = {g.name: g.entity for g in component.streaming.groups}
    by_view: dict[str, list[str]] = {}
    for ref in refs:
        by_view.setdefault(ref.split(":", 1)[0], []).append(ref)
    frame = rows.reset_index(drop=True)
    frame[EVENT_TIMESTAMP] = _utc(frame[EVENT_TIMESTAMP])
    for view, view_refs in by_view.items():
        key = entity_of[view]
        columns = [ref.replace(":", "__") for ref in view_refs]
        pairs = frame[[key, EVENT_TIMESTAMP]].drop_duplicates(ignore_index=True)
        pairs = pairs[pairs[key].isin(_entities_in_history(store, view, key))]
        if pairs.empty:
            frame[columns] = np.nan
            continue
        with warnings.catch_warnings():
            # pandas' notice about its own future behaviour, raised inside dask's sort of Feast's join.
            warnings.filterwarnings("ignore", "Downcasting object dtype arrays", FutureWarning)
            job = store.get_historical_features(entity_df=pairs, features=view_refs, full_feature_names=True)
            found = job.to_df()
        found = found[[key, EVENT_TIMESTAMP, *columns]].assign(**{EVENT_TIMESTAMP: _utc(found[EVENT_TIMESTAMP])})
        frame = frame.merge(found, on=[key, EVENT_TIMESTAMP], how="left", validate="many_to_one")
        # Feast's integer columns hold NaN once a row has no window: floats, as the model server reads them.
        frame[columns] = frame[columns].astype("float64")
    frame = frame.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
    return TrainingSet(frame=frame, features=[ref.replace(":", "__") for ref in refs])


def _entities_in_history(store: Any, view: str, key: str) -> pd.Series:
    """The entity keys with at least one window in a view's history (its batch source's part files, key only)."""
    parts = read_parts(store.get_feature_view(view).batch_source.path, columns=[key])
    return pd.concat(parts, ignore_index=True)[key].drop_duplicates() if parts else pd.Series([], dtype="object")


def _utc(times: pd.Series) -> pd.Series:
    """Timestamps in one dtype (UTC, nanoseconds), so rows and Feast's answer join on equal values."""
    return pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")


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
    """Examples in the window (with their labels), joined with features, split by time."""
    rows, unlabelled = labelled_examples(component, offline_root, window)
    training = join_features(component, store, rows)
    training.unlabelled = unlabelled
    return split_by_time(training)
