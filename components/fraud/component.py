"""The fraud component's declarations."""

from __future__ import annotations

from components.fraud.events import generate
from components.fraud.model import MODEL
from contract import Aggregate, Component, Domain, EventField, EventSchema, FeatureGroup, StreamingSpec, Window

EVENTS = EventSchema(
    fields=(
        EventField("transaction_id", "string"),
        EventField("card_id", "string"),
        EventField("merchant_id", "string"),
        EventField("amount", "double", Domain(minimum=0.01, maximum=100_000.0)),
        EventField("channel", "string", Domain(values=("online", "pos"))),
        EventField("event_time", "long"),
        EventField("is_fraud", "long"),
    ),
    event_time="event_time",
    label="is_fraud",
)

AMOUNT = (
    Aggregate("count"),
    Aggregate("sum", "amount"),
    Aggregate("avg", "amount"),
    Aggregate("max", "amount"),
)

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        # Velocity: a burst of spending shows within minutes.
        FeatureGroup("card_10m", entity="card_id", window=Window(600, 60), aggregates=AMOUNT),
        # The card's habit, to compare a new amount against.
        FeatureGroup("card_1h", entity="card_id", window=Window(3600, 300), aggregates=AMOUNT),
        # Merchants that suddenly see more and larger transactions.
        FeatureGroup("merchant_1h", entity="merchant_id", window=Window(3600, 300), aggregates=AMOUNT),
    ),
    watermark_s=5,
)

component = Component(
    name="fraud",
    description="Fraud scoring of card transactions (binary classification)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)
