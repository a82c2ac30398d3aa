"""The demand component's declarations: one stream of orders and of the actual counts that settle each forecast,
features over the orders, and the actual count as a label that arrives once the forecast's five minutes are over."""

from __future__ import annotations

from components.demand.events import MAX_DELAY_S, generate
from components.demand.model import MODEL
from contract import (
    Aggregate,
    Component,
    EventField,
    EventKind,
    EventSchema,
    FeatureGroup,
    Feedback,
    StreamingSpec,
    Window,
)

EVENTS = EventSchema(
    fields=(
        EventField("kind", "string"),
        EventField("order_id", "string"),
        EventField("zone_id", "string"),
        EventField("forecast_id", "string"),
        EventField("basket_value", "double"),
        EventField("orders_next_5m", "long"),
        EventField("event_time", "long"),
    ),
    event_time="event_time",
    kind="kind",
    kinds=(
        # An order names the forecast current when it came in (its zone, the minute it falls in).
        EventKind("order", ("order_id", "zone_id", "forecast_id", "basket_value")),
        # Per zone and minute boundary, once its five minutes have passed: the orders they held.
        EventKind("actual", ("zone_id", "forecast_id", "orders_next_5m")),
    ),
)

ORDERS = ("order",)  # actuals are not demand: no window counts them

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        # The last five minutes: the naive forecast, and the first sign of a surge. Keyed by zone, which both
        # kinds carry, so a zone's orders and actuals stay in order on one partition.
        FeatureGroup(
            "zone_5m", entity="zone_id", window=Window(300, 60), aggregates=(Aggregate("count"),), kinds=ORDERS
        ),
        # A quarter of an hour: less noisy, still recent.
        FeatureGroup(
            "zone_15m",
            entity="zone_id",
            window=Window(900, 60),
            aggregates=(Aggregate("count"), Aggregate("avg", "basket_value")),
            kinds=ORDERS,
        ),
        # The hour: the zone's level, to see whether it is rising or fading.
        FeatureGroup(
            "zone_1h", entity="zone_id", window=Window(3600, 300), aggregates=(Aggregate("count"),), kinds=ORDERS
        ),
    ),
    watermark_s=5,
    # The actual count is known five minutes after the forecast's start and published up to a minute later.
    feedback=Feedback(kind="actual", key="forecast_id", label="orders_next_5m", max_delay_s=MAX_DELAY_S),
)

component = Component(
    name="demand",
    description="Demand forecasting: orders per zone in the next five minutes (regression)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)
