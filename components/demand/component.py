"""The demand component's declarations."""

from __future__ import annotations

from components.demand.events import generate
from components.demand.model import MODEL
from contract import Aggregate, Component, EventField, EventSchema, FeatureGroup, StreamingSpec, Window

EVENTS = EventSchema(
    fields=(
        EventField("order_id", "string"),
        EventField("zone_id", "string"),
        EventField("basket_value", "double"),
        EventField("event_time", "long"),
    ),
    event_time="event_time",
)

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        # The last five minutes: the naive forecast, and the first sign of a surge.
        FeatureGroup("zone_5m", entity="zone_id", window=Window(300, 60), aggregates=(Aggregate("count"),)),
        # A quarter of an hour: less noisy, still recent.
        FeatureGroup(
            "zone_15m",
            entity="zone_id",
            window=Window(900, 60),
            aggregates=(Aggregate("count"), Aggregate("avg", "basket_value")),
        ),
        # The hour: the zone's level, to see whether it is rising or fading.
        FeatureGroup("zone_1h", entity="zone_id", window=Window(3600, 300), aggregates=(Aggregate("count"),)),
    ),
    watermark_s=5,
)

component = Component(
    name="demand",
    description="Demand forecasting: orders per zone in the next five minutes (regression)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)
