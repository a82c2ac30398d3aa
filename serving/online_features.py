"""Online features for a batch of requests, with the views' TTL applied: Feast's online store returns the last
value it holds however old it is, but a window result older than its view's TTL no longer describes the entity's
present, so it is treated as absent (NaN) exactly as the training set's point-in-time join treats it. An entity the
store never saw is one without recent activity: every feature NaN, as in training (``tests/local/test_parity.py``
requires both paths to agree)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from contract import Component


class OnlineFeatures:
    def __init__(self, component: Component, store: Any) -> None:
        self.component = component
        self.store = store
        self.refs = component.feature_refs()
        self.keys = component.entity_keys()
        groups = {g.name: g for g in component.streaming.groups}
        views = {name: groups[name].window.size_s + groups[name].window.slide_s for name in component.feature_groups()}
        # (ref, column, its timestamp column, TTL): resolved once, not on every request.
        self.columns = [
            (ref, ref.replace(":", "__"), f"{ref.replace(':', '__')}__ts", views[ref.split(":", 1)[0]])
            for ref in self.refs
        ]

    def lookup(self, request: Mapping[str, Sequence[Any]], now: datetime | None = None) -> pd.DataFrame:
        """The request's columns (``{field: [value per row]}``, or a DataFrame) with every feature column
        (``<view>__<feature>``) joined; NaN where absent or expired.

        This runs on every request, so it stays in plain lists and numpy and builds one DataFrame at the end: a
        pandas frame per step (records, per-feature Series, a concat) cost several times the Feast read itself.
        """
        keys = self.keys
        key_values = [list(request[key]) for key in keys]
        entity_rows = [dict(zip(keys, values, strict=True)) for values in zip(*key_values, strict=True)]
        response = self.store.get_online_features(features=self.refs, entity_rows=entity_rows, full_feature_names=True)
        values = response.to_dict(include_event_timestamps=True)
        now_s = (now or datetime.now(tz=UTC)).timestamp()
        joined: dict[str, Any] = {name: list(column) for name, column in request.items()}
        for _ref, column, stamp_column, ttl_s in self.columns:
            stamps = np.asarray(values[stamp_column], dtype="float64")  # epoch seconds; 0 when absent
            fresh = (stamps > 0) & (now_s - stamps <= ttl_s)
            # Feast returns numbers or None (absent, or an entity it never saw): as float64, None is NaN.
            joined[column] = np.where(fresh, np.asarray(values[column], dtype="float64"), np.nan)
        return pd.DataFrame(joined, copy=False)
