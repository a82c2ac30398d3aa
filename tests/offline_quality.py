"""A component's model quality without the engines: features computed by the pandas reference of the streaming
windows, joined point in time as Feast does (newest window that ended at or before the example, within the view's
TTL), split by time, fit with fixed parameters and scored on the newest rows. Unit tests use it to check that a
component's data carries the signal it promises; the local tier checks the same through Flink, Feast and KFP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from contract import Component
from contract.model import EVENT_TIMESTAMP
from tests.support.streaming_reference import reference_windows


def training_frame(component: Component, events: list[dict[str, Any]]) -> pd.DataFrame:
    """Examples with every feature the model reads, under Feast's full names (``<view>__<feature>``)."""
    rows = component.model.examples(pd.DataFrame(events)).sort_values(EVENT_TIMESTAMP, kind="stable")
    rows = rows.reset_index(drop=True)
    wanted = set(component.feature_groups())
    for group in component.streaming.groups:
        if group.name not in wanted:
            continue
        windows = reference_windows(component, events, group).sort_values("window_end")
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
    *_, fitted = model.fit(params, model.prepare(train), train[model.target].to_numpy(), 0)  # the last stage
    y = test[model.target].to_numpy()
    score = model.metric.score(y, model.predict(fitted, model.prepare(test)))
    baseline = model.metric.score(y, np.asarray(model.baseline(test))) if model.baseline else None
    return Quality(score, baseline, len(frame))
