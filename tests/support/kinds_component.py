"""A small component of two event kinds with labels that arrive as their own events, for the streaming tests.

Parcels: an order is ``placed`` at a shop with a courier; later it is ``delivered`` by that courier, late or not.
Feature groups count placed orders per shop (with their amounts), deliveries per courier, and every event per
courier; the ``delivered`` events carry the label. It is not registered (no entry point): tests that run its
workers in processes of their own register it for those processes (``register_for_tests``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import (
    Aggregate,
    Component,
    EventField,
    EventKind,
    EventSchema,
    FeatureGroup,
    Feedback,
    IntRange,
    Metric,
    ModelSpec,
    StreamingSpec,
    Window,
)
from contract.model import EVENT_TIMESTAMP
from contract.registry import ENTRY_POINT_GROUP

NAME = "parcels"
SHOPS, COURIERS = 8, 5

EVENTS = EventSchema(
    fields=(
        EventField("kind", "string"),
        EventField("order_id", "string"),
        EventField("shop_id", "string"),
        EventField("courier_id", "string"),
        EventField("amount", "double"),
        EventField("late", "long"),
        EventField("event_time", "long"),
    ),
    event_time="event_time",
    kind="kind",
    kinds=(
        EventKind("placed", ("order_id", "shop_id", "courier_id", "amount")),
        EventKind("delivered", ("order_id", "courier_id", "late")),
    ),
)

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        FeatureGroup(
            "shop_10m",
            entity="shop_id",
            window=Window(600, 60),
            aggregates=(Aggregate("count"), Aggregate("sum", "amount")),
            kinds=("placed",),
        ),
        FeatureGroup(
            "courier_10m",
            entity="courier_id",
            window=Window(600, 60),
            aggregates=(Aggregate("count"), Aggregate("avg", "late")),
            kinds=("delivered",),
        ),
        # No filter: placed and delivered events both count.
        FeatureGroup("courier_all_10m", entity="courier_id", window=Window(600, 60), aggregates=(Aggregate("count"),)),
    ),
    feedback=Feedback(kind="delivered", key="order_id", label="late", max_delay_s=3600),
)


def generate(
    n_events: int, start_ms: int, seed: int = 0, *, change_at_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """About ``n_events`` events in event-time order: orders placed every ~2 s, each delivered 5 to 40 minutes
    later; a courier with many deliveries in hand is more often late. Stationary: ``change_at_ms`` is ignored."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    clock = start_ms
    for i in range(n_events // 2):
        clock += int(rng.expovariate(1 / 2000)) + 1
        courier = f"courier-{rng.randrange(COURIERS)}"
        order = f"o{seed}-{i}"
        events.append(
            {
                "kind": "placed",
                "order_id": order,
                "shop_id": f"shop-{rng.randrange(SHOPS)}",
                "courier_id": courier,
                "amount": round(rng.uniform(5, 80), 2),
                "event_time": clock,
            }
        )
        delay = int(rng.uniform(300_000, 2_400_000))
        late = int(delay > 1_500_000 or rng.random() < 0.1)
        events.append(
            {"kind": "delivered", "order_id": order, "courier_id": courier, "late": late, "event_time": clock + delay}
        )
    events.sort(key=lambda e: e["event_time"])
    yield from events[:n_events]


def examples(events: pd.DataFrame) -> pd.DataFrame:
    """One row per placed order, keyed by its order id; its label arrives later (``STREAMING.feedback``)."""
    placed = events[events["kind"] == "placed"]
    frame = placed[["order_id", "shop_id", "courier_id", "amount"]].copy()
    frame[EVENT_TIMESTAMP] = pd.to_datetime(placed["event_time"].astype("int64"), unit="ms", utc=True)
    return frame.reset_index(drop=True)


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["amount", "shop_10m__event_count", "courier_10m__event_count", "courier_all_10m__event_count"]
    return frame[columns].astype("float64").fillna(0.0)


def fit(params: Mapping[str, Any], x: pd.DataFrame, y: np.ndarray, seed: int) -> Iterator[Any]:
    from sklearn.linear_model import LogisticRegression

    yield LogisticRegression(C=float(params["c"]), random_state=seed).fit(x, y)


def predict(model: Any, x: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(x)[:, 1])


def accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(np.mean((y_score >= 0.5) == (y_true == 1)))


MODEL = ModelSpec(
    task="binary",
    target="late",
    request_fields=("order_id", "amount"),
    examples=examples,
    prepare=prepare,
    fit=fit,
    predict=predict,
    metric=Metric("accuracy", "max", accuracy, tolerance=0.02),
    search_space={"c": IntRange(1, 10)},
    max_stages=1,
)

component = Component(
    name=NAME,
    description="Parcels: orders placed and delivered, late or not (a test component of two event kinds)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)


def register_for_tests(folder: Path) -> Path:
    """A distribution's metadata registering this component under ``folder``: put ``folder`` on a process's
    ``sys.path`` (or ``PYTHONPATH``) and ``contract.registry`` finds it there, in that process only."""
    info = folder / f"mlstack_test_{NAME}-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: mlstack-test-{NAME}\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{NAME} = tests.support.kinds_component:component\n")
    return folder
