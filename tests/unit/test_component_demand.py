"""Unit checks of the demand component's delayed labels: per zone and minute boundary, the actual count of the
next five minutes arrives once they have passed (a little later), named by the forecast id a request sends;
orders never carry it, requests are built from orders only, and the training set joins the counts as known by its
cutoff."""

from __future__ import annotations

import bisect
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from components.demand.events import HORIZON_S, PUBLISH_DELAY_S, forecast_id
from contract.model import EVENT_TIMESTAMP
from contract.registry import load
from local.traffic import instances, request_kinds
from pipelines.features.parts import write_part
from pipelines.streaming.event_archive import NULLABLE, events_path
from pipelines.training import dataset
from tests.offline_quality import with_labels

MINUTE = 60_000
START_MS = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE
TYPES = {"string": str, "long": int, "double": float, "boolean": bool}


def test_demand_declares_the_actual_count_as_a_label_arriving_as_its_own_event() -> None:
    demand = load("demand")
    streaming, model = demand.streaming, demand.model
    assert streaming.feedback is not None
    assert (streaming.feedback.kind, streaming.feedback.key, streaming.feedback.label) == (
        "actual",
        "forecast_id",
        "orders_next_5m",
    )
    assert streaming.feedback.max_delay_s == HORIZON_S + PUBLISH_DELAY_S[1]
    assert demand.entity_keys() == ["zone_id"] and model.request_fields == ("forecast_id",)
    assert all(g.kinds == ("order",) for g in streaming.groups), "actuals are not orders: no window counts them"


def test_a_forecast_id_names_the_zone_and_the_minute_it_starts_at() -> None:
    assert forecast_id("zone-03", START_MS + 59_999) == forecast_id("zone-03", START_MS)
    assert forecast_id("zone-03", START_MS) == "zone-03@" + pd.Timestamp(START_MS, unit="ms").strftime(
        "%Y-%m-%dT%H:%MZ"
    )
    assert forecast_id("zone-03", START_MS + MINUTE) != forecast_id("zone-03", START_MS)


def test_demand_generator_settles_every_zone_and_minute_once_with_the_count_of_the_next_five_minutes() -> None:
    demand = load("demand")
    schema = demand.streaming.events
    start = START_MS + 17_000  # not on a minute: actuals still settle whole minutes
    events = list(demand.generate(12_000, start, 3))
    assert events == list(demand.generate(12_000, start, 3)) and len(events) == 12_000
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    for event in events:
        carried = schema.carried(event["kind"])
        assert set(event) == {f.name for f in carried}, event  # an order never carries the count
        for field in carried:
            assert isinstance(event[field.name], TYPES[field.type]), (field.name, event)
    orders: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event["kind"] == "order":
            orders[event["zone_id"]].append(event["event_time"])
            assert event["forecast_id"] == forecast_id(event["zone_id"], event["event_time"])
    actuals = [e for e in events if e["kind"] == "actual"]
    assert len({a["forecast_id"] for a in actuals}) == len(actuals), "one actual per zone and minute"
    first = start - start % MINUTE + MINUTE
    horizon = HORIZON_S * 1000
    settled_by_last = {(z, t) for z in orders for t in range(first, times[-1] - horizon - 60_000 + 1, MINUTE)}
    seen = set()
    for actual in actuals:
        zone, at = actual["zone_id"], actual["event_time"]
        t = next(t for t in range(first, at, MINUTE) if forecast_id(zone, t) == actual["forecast_id"])
        seen.add((zone, t))
        low, high = PUBLISH_DELAY_S
        assert t + horizon + low * 1000 <= at <= t + horizon + high * 1000
        zone_orders = orders[zone]
        count = bisect.bisect_left(zone_orders, t + horizon) - bisect.bisect_left(zone_orders, t)
        assert actual["orders_next_5m"] == count, (actual, count)
    assert settled_by_last <= seen, "every zone and minute whose actual is due by the last event has one"


def test_demand_requests_are_orders_naming_the_forecast_they_ask_for() -> None:
    demand = load("demand")
    events = list(demand.generate(2_000, START_MS, 3))
    assert request_kinds(demand) == ("order",), "an actual carries zone and forecast id, but it is a label"
    rows = instances(demand, events)
    orders = [e for e in events if e["kind"] == "order"]
    assert rows == [{"zone_id": e["zone_id"], "forecast_id": e["forecast_id"]} for e in orders]


def test_demand_examples_are_zone_minutes_named_as_the_generator_names_their_actuals() -> None:
    demand = load("demand")
    events = pd.DataFrame(demand.generate(20_000, START_MS, 7))
    rows = demand.model.examples(events)
    assert list(rows.columns) == ["zone_id", "forecast_id", EVENT_TIMESTAMP] and "orders_next_5m" not in rows
    at = rows[EVENT_TIMESTAMP].astype("int64") // 1_000_000
    assert (at % MINUTE == 0).all() and at.min() == START_MS + 16 * MINUTE, "after the quarter-hour warm-up"
    assert list(rows["forecast_id"]) == [forecast_id(z, t) for z, t in zip(rows["zone_id"], at, strict=True)]
    labelled = with_labels(demand, events, rows)
    assert len(labelled) > 0.95 * (at <= events["event_time"].max() - HORIZON_S * 1000 - 60_000).sum()


def _archive(root: Path, events: list[dict[str, Any]]) -> None:
    fields = load("demand").streaming.events.fields
    frame = pd.DataFrame(events, columns=[f.name for f in fields]).astype({f.name: NULLABLE[f.type] for f in fields})
    write_part(frame, events_path(str(root)))


def test_the_demand_training_set_takes_the_counts_known_by_its_cutoff(tmp_path: Path) -> None:
    demand = load("demand")
    events = list(demand.generate(8_000, START_MS, 5))
    _archive(tmp_path, events)
    end_ms = events[-1]["event_time"] - 10 * MINUTE - 30_000
    end = pd.Timestamp(end_ms, unit="ms", tz="UTC")
    rows, unlabelled = dataset.labelled_examples(demand, str(tmp_path), dataset.DataWindow(end=end))
    assert demand.streaming.feedback is not None
    max_delay_ms = demand.streaming.feedback.max_delay_s * 1000
    at = rows[EVENT_TIMESTAMP].astype("int64") // 1_000_000
    assert at.max() <= end_ms - max_delay_ms, "a forecast whose count may still come is left out"
    counts = {e["forecast_id"]: e["orders_next_5m"] for e in events if e["kind"] == "actual"}
    assert list(rows["orders_next_5m"]) == [counts[f] for f in rows["forecast_id"]]
    all_rows = demand.model.examples(pd.DataFrame(events))
    window = all_rows[all_rows[EVENT_TIMESTAMP] < end]
    assert len(rows) + unlabelled == len(window) and unlabelled == 6 * 12, "the last six minutes wait, 12 zones"
