"""The fraud component's declarations: one stream of transactions and their resolutions, features over the
transactions, and the resolution's verdict as a label that arrives minutes later as its own event."""

from __future__ import annotations

from components.fraud.events import MAX_DELAY_S, generate
from components.fraud.model import MODEL
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
        EventField("transaction_id", "string"),
        EventField("card_id", "string"),
        EventField("merchant_id", "string"),
        EventField("amount", "double", Domain(minimum=0.01, maximum=100_000.0)),
        EventField("channel", "string", Domain(values=("online", "pos"))),
        EventField("is_fraud", "long"),
        EventField("resolved_as", "string"),
        EventField("event_time", "long"),
    ),
    event_time="event_time",
    kind="kind",
    kinds=(
        # What is known when the card is used: a request is made for it, and it never says whether it is fraud.
        EventKind("transaction", ("transaction_id", "card_id", "merchant_id", "amount", "channel")),
        # Minutes later: a chargeback (is_fraud 1) or a confirmation (0). It carries the card, so it is keyed
        # like the card's transactions on the topic.
        EventKind("resolution", ("transaction_id", "card_id", "is_fraud", "resolved_as")),
    ),
)

AMOUNT = (
    Aggregate("count"),
    Aggregate("sum", "amount"),
    Aggregate("avg", "amount"),
    Aggregate("max", "amount"),
)
TRANSACTIONS = ("transaction",)  # resolutions are not spending: no window counts them

STREAMING = StreamingSpec(
    events=EVENTS,
    groups=(
        # Velocity: a burst of spending shows within minutes. First, so events are keyed by card on the topic
        # (both kinds carry it).
        FeatureGroup("card_10m", entity="card_id", window=Window(600, 60), aggregates=AMOUNT, kinds=TRANSACTIONS),
        # The card's habit, to compare a new amount against.
        FeatureGroup("card_1h", entity="card_id", window=Window(3600, 300), aggregates=AMOUNT, kinds=TRANSACTIONS),
        # Merchants that suddenly see more and larger transactions.
        FeatureGroup(
            "merchant_1h", entity="merchant_id", window=Window(3600, 300), aggregates=AMOUNT, kinds=TRANSACTIONS
        ),
    ),
    watermark_s=5,
    # The verdict comes with the resolution, up to 10 minutes after the transaction it judges.
    feedback=Feedback(kind="resolution", key="transaction_id", label="is_fraud", max_delay_s=MAX_DELAY_S),
)

component = Component(
    name="fraud",
    description="Fraud scoring of card transactions (binary classification)",
    streaming=STREAMING,
    generate=generate,
    model=MODEL,
)
