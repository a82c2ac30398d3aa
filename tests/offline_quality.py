"""A component's model quality without the engines: labels that arrive as their own events joined by key, features
computed by the pandas reference of the streaming windows (of the kinds each group counts), joined point in time as
Feast does (newest window that ended at or before the example, within the view's TTL; NaN when there is none),
split by time, fit with fixed parameters (the target encoded as the training template encodes it) and scored on the
newest rows; the baseline sees the rows without their target. Unit tests use it to check that a
component's data carries the signal it promises; the local tier checks the same through Flink, Feast and KFP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract import Component
from contract.model import EVENT_TIMESTAMP
from contract.tasks import encode_target
from tests.support.streaming_reference import reference_windows


def of_kinds(component: Component, events: list[dict[str, Any]], kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The events a feature group aggregates: those of its kinds (all of them when it names none)."""
    kind = component.streaming.events.kind
    if not kinds or kind is None:
        return events
    return [e for e in events if e.get(kind) in kinds]


def with_labels(component: Component, events: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Examples of a component whose labels arrive as their own events (``StreamingSpec.feedback``), each with
    the newest label its key has among ``events`` (the cutoff is the newest event); examples without one are
    dropped. Components whose examples carry the target are returned as they are."""
    feedback, schema = component.streaming.feedback, component.streaming.events
    if feedback is None or schema.kind is None:
        return rows
    labels = events[events[schema.kind] == feedback.kind].sort_values(schema.event_time, kind="stable")
    newest = labels.drop_duplicates(feedback.key, keep="last").set_index(feedback.key)[feedback.label]
    rows = rows.assign(**{component.model.target: rows[feedback.key].map(newest)})
    return rows[rows[component.model.target].notna()]


def training_frame(component: Component, events: list[dict[str, Any]]) -> pd.DataFrame:
    """Examples with their labels and every feature the model reads, under Feast's full names
    (``<view>__<feature>``)."""
    frame = pd.DataFrame(events)
    rows = with_labels(component, frame, component.model.examples(frame))
    rows = rows.sort_values(EVENT_TIMESTAMP, kind="stable").reset_index(drop=True)
    wanted = set(component.feature_groups())
    for group in component.streaming.groups:
        if group.name not in wanted:
            continue
        counted = of_kinds(component, events, group.kinds)
        windows = reference_windows(component, counted, group).sort_values("window_end")
        windows = windows.rename(columns={f: f"{group.name}__{f}" for f in group.feature_names()})
        ttl = pd.Timedelta(seconds=group.window.size_s + group.window.slide_s)
        rows = pd.merge_asof(
            rows.astype({EVENT_TIMESTAMP: windows["window_end"].dtype}),
            windows,
            left_on=EVENT_TIMESTAMP,
            right_on="window_end",
            by=group.entity,
            tolerance=ttl,
            direction="backward",
        ).drop(columns="window_end")
    return rows


@dataclass
class Quality:
    score: float
    baseline: float | None
    rows: int


def holdout_quality(
    component: Component, events: list[dict[str, Any]], params: dict[str, Any], holdout: float = 0.2
) -> Quality:
    """Fit on the older rows with ``params`` (all stages), score on the newest ``holdout`` share."""
    model = component.model
    frame = training_frame(component, events)
    cut = int(len(frame) * (1 - holdout))
    train, test = frame.iloc[:cut], frame.iloc[cut:]
    # The target as the training template hands it to fit and the metric: class indices for multiclass.
    y_train = encode_target(model, train[model.target].to_numpy())
    *_, fitted = model.fit(params, model.prepare(train), y_train, 0)  # the last stage
    y = encode_target(model, test[model.target].to_numpy())
    score = model.metric.score(y, model.predict(fitted, model.prepare(test)))
    # A baseline never sees the target: it is a naive forecast, not a peek at the answer.
    unlabelled = test.drop(columns=[model.target])
    baseline = model.metric.score(y, np.asarray(model.baseline(unlabelled))) if model.baseline else None
    return Quality(score, baseline, len(frame))
