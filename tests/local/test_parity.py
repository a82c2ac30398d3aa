"""Training/serving parity for every registered component: its generated events streamed through the real Kafka +
Flink + Feast pipeline, then for a sample of entities (recently active, idle beyond a view's TTL, never seen) the
training path's features (the template's point-in-time join over Feast's history) equal what the model server's
online lookup returns at the same time, NaN where absent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contract import Component
from contract.model import EVENT_TIMESTAMP
from contract.registry import available, load
from local.services import EmbeddedServices
from local.synthetic_stream import Streamed
from pipelines.training.dataset import join_features
from serving.online_features import OnlineFeatures
from tests.local.conftest import stream_component

EVENTS = 4000
SAMPLE = 40
ROW = "parity_row"


@pytest.fixture(params=available())
def streamed(request: pytest.FixtureRequest, embedded: EmbeddedServices) -> Iterator[Streamed]:
    """One component's events streamed from nothing until every window is in Feast; its job stopped after."""
    run = stream_component(embedded, request.param, EVENTS)
    yield run
    run.streaming.stop()


def _sample(component: Component, events: list[dict[str, Any]]) -> pd.DataFrame:
    """Entity-key combinations spread over the stream (the early ones idle by its end), and one never seen."""
    keys = component.entity_keys()
    combos = list(dict.fromkeys(tuple(e[k] for k in keys) for e in events if all(e.get(k) is not None for k in keys)))
    picked = [combos[i] for i in np.linspace(0, len(combos) - 1, min(SAMPLE, len(combos))).astype(int)]
    types = {f.name: f.type for f in component.streaming.events.fields}
    never = tuple(-1 if types[k] == "long" else f"never-seen-{k}" for k in keys)
    rows = pd.DataFrame([*dict.fromkeys(picked), never], columns=keys)
    rows[ROW] = range(len(rows))
    return rows


def test_training_features_equal_the_online_features_at_the_same_time(streamed: Streamed) -> None:
    component = load(streamed.streaming.component.name)
    store = streamed.streaming.feature_store()
    online = OnlineFeatures(component, store)
    rows = _sample(component, streamed.events)
    columns = [ref.replace(":", "__") for ref in component.feature_refs()]
    groups = {g.name: g for g in component.streaming.groups}
    ttls = sorted({groups[name].window.size_s + groups[name].window.slide_s for name in component.feature_groups()})
    now = pd.Timestamp.now(tz="UTC").floor("s")
    # Now (the stream's last window closed a moment ago), then just past each TTL: views expire one after another,
    # so every sampled entity is at some point idle beyond a view's TTL, until every feature is absent.
    times = [now, *(now + pd.Timedelta(seconds=ttl + 1) for ttl in ttls)]
    present = absent = 0
    for at in times:
        training = join_features(component, store, rows.assign(**{EVENT_TIMESTAMP: at})).frame
        training = training.sort_values(ROW).reset_index(drop=True)
        assert training[ROW].tolist() == rows[ROW].tolist(), f"{component.name}: the training path lost rows at {at}"
        served = online.lookup({k: rows[k].tolist() for k in component.entity_keys()}, now=at.to_pydatetime())
        for column in columns:
            expected = training[column].to_numpy(dtype="float64", na_value=np.nan)
            actual = served[column].to_numpy(dtype="float64", na_value=np.nan)
            np.testing.assert_allclose(
                actual, expected, rtol=1e-12, equal_nan=True, err_msg=f"{component.name}: {column} at {at}"
            )
            present += int(np.isfinite(expected).sum())
            absent += int(np.isnan(expected).sum())
        assert training[columns].iloc[-1].isna().all(), f"{component.name}: the never-seen entity has no features"
    assert present and absent, f"{component.name}: the sample must hold both present and absent features"
    assert np.isnan(training[columns].to_numpy(dtype="float64")).all(), "past every TTL, every feature is absent"
