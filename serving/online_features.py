"""Online features for a batch of requests, with the views' TTL applied: Feast's online store returns the last
value it holds however old it is, but a window result older than its view's TTL no longer describes the entity's
present, so it is treated as absent (NaN) exactly as the training set's point-in-time join treats it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from contract import Component


class UnknownEntity(LookupError):
    """No feature view holds anything for an entity key; the message names it."""


class OnlineFeatures:
    def __init__(self, component: Component, store: Any) -> None:
        self.component = component
        self.store = store
        self.refs = component.feature_refs()
        groups = {g.name: g for g in component.streaming.groups}
        self.views = {
            name: (groups[name].entity, groups[name].window.size_s + groups[name].window.slide_s)
            for name in component.feature_groups()
        }

    def lookup(self, rows: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
        """``rows`` with every feature column (``<view>__<feature>``) joined; NaN where absent or expired."""
        keys = self.component.entity_keys()
        entity_rows = rows[keys].to_dict("records")
        response = self.store.get_online_features(features=self.refs, entity_rows=entity_rows, full_feature_names=True)
        values = response.to_dict(include_event_timestamps=True)
        now_s = (now or datetime.now(tz=UTC)).timestamp()
        columns: dict[str, np.ndarray] = {}
        seen = {key: np.zeros(len(rows), dtype=bool) for key in keys}
        for ref in self.refs:
            view = ref.split(":", 1)[0]
            entity, ttl_s = self.views[view]
            column = ref.replace(":", "__")
            stamps = np.asarray(values[f"{column}__ts"], dtype="float64")  # epoch seconds; 0 when absent
            seen[entity] |= stamps > 0
            fresh = (stamps > 0) & (now_s - stamps <= ttl_s)
            columns[column] = np.where(fresh, pd.to_numeric(pd.Series(values[column]), errors="coerce"), np.nan)
        # One concat, not a column insert per feature: this runs for every request.
        joined = pd.concat([rows, pd.DataFrame(columns, index=rows.index)], axis=1)
        for key, found in seen.items():
            if not found.all():
                unknown = rows[key][~found].astype(str).unique().tolist()
                raise UnknownEntity(f"unknown {key} {', '.join(unknown[:5])}: no features in the online store")
        return joined
