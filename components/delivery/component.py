"""The delivery component's declarations: one stream of two event kinds, features filtered by kind, and the
outcome as a label that arrives as its own event."""

from __future__ import annotations

from components.delivery.events import generate
from components.delivery.model import MAX_DELAY_S, MODEL
from contract import (
    Aggregate,
    Component,
    Domain,
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
        EventField("restaurant_id", "string"),
        EventField("zone_id", "string"),
        EventField("courier_id", "string"),
        # What a request may send: a served order further than a city or with a negative basket is refused.
        EventField("distance_km", "double", Domain(minimum=0.0, maximum=50.0)),
        EventField("basket_value", "double", Domain(minimum=0.0, maximum=10_000.0)),
        EventField("outcome", "string"),
        EventField("delivery_minutes", "double"),
        EventField("event_time", "long"),
    ),
    event_time="event_time",
    kind="kind",
    kinds=(
        EventKind("placed", ("order_id", "restaurant_id", "zone_id", "courier_id", "distance_km", "basket_value")),
        EventKind("delivered", ("order_id", "courier_id", "outcome", "delivery_minutes")),
    ),
)

PLACED = ("placed",)

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        # First, so events are keyed by courier (both kinds carry it): a courier's orders and deliveries stay in
        # order on one partition. Orders assigned in the last hour: the courier's workload.
        FeatureGroup(
            "courier_1h", entity="courier_id", window=Window(3600, 300), aggregates=(Aggregate("count"),), kinds=PLACED
        ),
        # Deliveries done in the last hour, and how long they took: with the orders assigned, the backlog.
        FeatureGroup(
            "courier_done_1h",
            entity="courier_id",
            window=Window(3600, 300),
            aggregates=(Aggregate("count"), Aggregate("avg", "delivery_minutes")),
            kinds=("delivered",),
        ),
        # Kitchen load: the restaurant's orders in the last half hour.
        FeatureGroup(
            "restaurant_30m",
            entity="restaurant_id",
            window=Window(1800, 300),
            aggregates=(Aggregate("count"), Aggregate("avg", "basket_value")),
            kinds=PLACED,
        ),
        # Zone demand: busy streets and busy couriers around. Sliding every minute (few zones, so few rows): the
        # freshest view, and windows that close while a demo or a live stream runs.
        FeatureGroup(
            "zone_15m", entity="zone_id", window=Window(900, 60), aggregates=(Aggregate("count"),), kinds=PLACED
        ),
    ),
    watermark_s=5,
    # The outcome arrives with the delivery, up to 70 minutes after the order it judges.
    feedback=Feedback(kind="delivered", key="order_id", label="outcome", max_delay_s=MAX_DELAY_S),
)

component = Component(
    name="delivery",
    description="Delivery outcome: on time, late or very late (multiclass classification)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)
