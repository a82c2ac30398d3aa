"""Synthetic card transactions with real signal, and their resolutions minutes later.

Most cards spend steadily around their own typical amount at a few merchants. Now and then a card is
compromised: a burst of several transactions within minutes, larger than the card's habit, mostly online and at a
small set of merchants that fraudsters favour. Velocity (transactions per window), amount relative to the card's
own history and merchant activity carry the signal.

One stream of two kinds: a ``transaction`` carries what is known when it is made (never whether it is fraud), and
its ``resolution`` follows later with the label: a ``chargeback`` half a minute to 4 minutes after a fraudulent
transaction (the cardholder disputes it), a ``confirmation`` 1 to 3 minutes after an honest one (it settled
undisputed). Real issuers take days to weeks; minutes keep the labels within a demo's or a test's stream, whose
training sets lose the examples younger than the longest delay at their cutoff.

A world that changes (``change_at_ms``, the event time of a regime change): a marketplace opens and a card-testing
ring starts. From then on four online shops the network has never seen (``m-060`` to ``m-063``, a marketplace's
sellers) take a quarter of honest online purchases, and the ring tries stolen numbers at the established, busy
merchants: a lone small online purchase (1 to 9) on any card every 4 s on average, about 3.6% of transactions
(fraud goes from about 3% of them to 6%). Bursts go on as before. A model trained before the change learned that
fraud comes in bursts, large and at quiet merchants: a lone small purchase on a card of ordinary velocity at a busy
merchant looks honest to it. On the unit test's seed (the change half an hour into a stream, windows still filling)
its ROC AUC falls from 0.95 to 0.81 (0.84-0.91 on four more seeds); one retrained after the change learns that an
amount far below the card's habit, online, is fraud now (0.95-0.97). With every window full, as in the loop's
drill, the champion's 0.96-0.98 falls to 0.88-0.91 (seed 11) and 0.76-0.87 (seed 12) in the half hour after the
change, while a model retrained on six minutes of it scores 0.93-0.97. (Testers at the new shops, as first written,
hurt the champion little: a shop an hour-long window has seen for minutes looks quiet, and quiet is what it learned
to fear.) Resolutions follow the same rules. The marketplace and the testers draw from random streams of their own,
so the stream before the change, and without one, is exactly the stationary stream. Figures: ``components/README.md``
(Worlds that change).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Any

from contract.generator import change_time

N_CARDS = 400
N_MERCHANTS = 60
RISKY_MERCHANTS = 6
MEAN_GAP_MS = 150  # one transaction every 150 ms of event time across all cards
BURST_PROBABILITY = 0.004  # chance that a given transaction starts a fraud burst on its card
BIG_PURCHASE = 0.05  # honest cards sometimes spend far above their habit too, so amount alone is not enough
CHARGEBACK_S = (30, 240)
"""A fraudulent transaction is charged back this many seconds after it (uniform)."""
CONFIRMATION_S = (60, 180)
"""An honest transaction is confirmed this many seconds after it (uniform)."""
MAX_DELAY_S = CHARGEBACK_S[1]
"""The latest a resolution arrives after its transaction (the generator's bound; a real issuer's promise)."""
NEW_MERCHANTS = 4
"""Online shops that appear with the regime change (ids after the first ``N_MERCHANTS``): a marketplace's sellers."""
MARKETPLACE_SHARE = 0.25
"""After the change, this share of honest online purchases goes to the new merchants (a marketplace's shops)."""
CARD_TESTING_GAP_MS = 4_000
"""After the change, one card-testing transaction every 4 s of event time on average (about 3.6% of them)."""
CARD_TESTING_AMOUNT = (1.0, 9.0)
"""A test purchase is small (uniform, in the card's currency): enough to see whether the number works."""


def generate(
    n_events: int, start_ms: int, seed: int = 0, *, change_at_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` events in event-time order from ``start_ms``: transactions and, minutes later, the
    resolution of each (those whose time falls after the last event are not yielded). From ``change_at_ms`` on,
    card testing at new merchants joins the bursts (module docstring); None: no change."""
    change_at_ms = change_time(change_at_ms)
    delays = random.Random(f"fraud-resolutions-{seed}")  # its own stream: the transactions do not depend on it
    pending: list[tuple[int, int, dict[str, Any]]] = []  # (event_time, sequence, resolution) still to come
    emitted = 0
    # The new pattern draws from its own random stream and is merged in by time (the old stream first on a tie),
    # so the world before the change, and without one, is exactly the stationary stream.
    testing = _card_testing(change_at_ms, seed) if change_at_ms is not None else iter(())
    merged = heapq.merge(_transactions(start_ms, seed, change_at_ms), testing, key=lambda pair: pair[0]["event_time"])
    for sequence, (transaction, is_fraud) in enumerate(merged):
        transaction["transaction_id"] = f"t{seed}-{sequence}"  # numbered in stream order: ids say nothing
        while pending and pending[0][0] <= transaction["event_time"]:
            if emitted >= n_events:
                return
            yield heapq.heappop(pending)[2]
            emitted += 1
        if emitted >= n_events:
            return
        yield transaction
        emitted += 1
        resolution = _resolution(delays, transaction, is_fraud)
        heapq.heappush(pending, (resolution["event_time"], sequence, resolution))


def _transactions(start_ms: int, seed: int, change_at_ms: int | None) -> Iterator[tuple[dict[str, Any], bool]]:
    """Transactions in event-time order, without end, each with whether it is fraud (known to the generator only)."""
    rng = random.Random(seed)
    # After the change, whether an online purchase goes to a new merchant is drawn from a stream of its own, so
    # the draws of the world before it (and without one) stay as they were.
    marketplace = random.Random(f"fraud-marketplace-{seed}")
    typical = [rng.lognormvariate(3.3, 0.6) for _ in range(N_CARDS)]
    favourites = [rng.sample(range(RISKY_MERCHANTS, N_MERCHANTS), 4) for _ in range(N_CARDS)]
    pending: list[tuple[int, int, int]] = []  # (event_time, sequence, card) of queued burst transactions
    clock = start_ms
    sequence = 0
    while True:
        clock += int(rng.expovariate(1 / MEAN_GAP_MS)) + 1
        while pending and pending[0][0] <= clock:
            at, _, card = heapq.heappop(pending)
            yield _fraud(rng, card, at, typical[card]), True
        card = rng.randrange(N_CARDS)
        if rng.random() < BURST_PROBABILITY:
            at = clock
            for _ in range(rng.randint(4, 12)):
                at += int(rng.uniform(5_000, 90_000))
                sequence += 1
                heapq.heappush(pending, (at, sequence, card))
        honest = {
            "kind": "transaction",
            "transaction_id": "",  # numbered by generate, in stream order
            "card_id": f"card-{card:04d}",
            "merchant_id": f"m-{_merchant(rng, favourites[card]):03d}",
            "amount": round(_honest_amount(rng, typical[card]), 2),
            "channel": "online" if rng.random() < 0.35 else "pos",
            "event_time": clock,
        }
        changed = change_at_ms is not None and clock >= change_at_ms
        if changed and honest["channel"] == "online" and marketplace.random() < MARKETPLACE_SHARE:
            honest["merchant_id"] = f"m-{N_MERCHANTS + marketplace.randrange(NEW_MERCHANTS):03d}"
        yield honest, False


def _resolution(rng: random.Random, transaction: dict[str, Any], is_fraud: bool) -> dict[str, Any]:
    low, high = CHARGEBACK_S if is_fraud else CONFIRMATION_S
    return {
        "kind": "resolution",
        "transaction_id": transaction["transaction_id"],
        "card_id": transaction["card_id"],
        "is_fraud": int(is_fraud),
        "resolved_as": "chargeback" if is_fraud else "confirmation",
        "event_time": transaction["event_time"] + int(rng.uniform(low, high) * 1000),
    }


def _honest_amount(rng: random.Random, typical: float) -> float:
    if rng.random() < BIG_PURCHASE:
        return typical * rng.uniform(1.5, 5.0)
    return max(1.0, rng.gauss(typical, typical * 0.3))


def _merchant(rng: random.Random, favourites: list[int]) -> int:
    """Mostly one of the card's usual merchants, sometimes any."""
    return rng.choice(favourites) if rng.random() < 0.8 else rng.randrange(N_MERCHANTS)


def _fraud(rng: random.Random, card: int, at: int, typical: float) -> dict[str, Any]:
    return {
        "kind": "transaction",
        "transaction_id": "",
        "card_id": f"card-{card:04d}",
        "merchant_id": f"m-{rng.randrange(RISKY_MERCHANTS) if rng.random() < 0.4 else rng.randrange(N_MERCHANTS):03d}",
        # Fraudsters test small before they spend big, so some burst transactions look ordinary.
        "amount": round(typical * (rng.uniform(0.3, 1.2) if rng.random() < 0.3 else rng.uniform(1.3, 4.5)), 2),
        "channel": "online" if rng.random() < 0.7 else "pos",
        "event_time": at,
    }


def _card_testing(change_at_ms: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """The new pattern from ``change_at_ms`` on, without end: a stolen card's number tried once with a small
    online purchase at one of the established merchants (none of the few risky ones bursts favour)."""
    rng = random.Random(f"fraud-card-testing-{seed}")
    clock = change_at_ms
    while True:
        clock += int(rng.expovariate(1 / CARD_TESTING_GAP_MS)) + 1
        transaction = {
            "kind": "transaction",
            "transaction_id": "",
            "card_id": f"card-{rng.randrange(N_CARDS):04d}",
            "merchant_id": f"m-{RISKY_MERCHANTS + rng.randrange(N_MERCHANTS - RISKY_MERCHANTS):03d}",
            "amount": round(rng.uniform(*CARD_TESTING_AMOUNT), 2),
            "channel": "online",
            "event_time": clock,
        }
        yield transaction, True
