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
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from typing import Any

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


def generate(n_events: int, start_ms: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` events in event-time order from ``start_ms``: transactions and, minutes later, the
    resolution of each (those whose time falls after the last event are not yielded)."""
    delays = random.Random(f"fraud-resolutions-{seed}")  # its own stream: the transactions do not depend on it
    pending: list[tuple[int, int, dict[str, Any]]] = []  # (event_time, sequence, resolution) still to come
    emitted = 0
    for sequence, (transaction, is_fraud) in enumerate(_transactions(start_ms, seed)):
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


def _transactions(start_ms: int, seed: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """Transactions in event-time order, without end, each with whether it is fraud (known to the generator only)."""
    rng = random.Random(seed)
    typical = [rng.lognormvariate(3.3, 0.6) for _ in range(N_CARDS)]
    favourites = [rng.sample(range(RISKY_MERCHANTS, N_MERCHANTS), 4) for _ in range(N_CARDS)]
    pending: list[tuple[int, int, int]] = []  # (event_time, sequence, card) of queued burst transactions
    clock = start_ms
    sequence = 0
    index = 0
    while True:
        clock += int(rng.expovariate(1 / MEAN_GAP_MS)) + 1
        while pending and pending[0][0] <= clock:
            at, _, card = heapq.heappop(pending)
            yield _fraud(rng, f"t{seed}-{index}", card, at, typical[card]), True
            index += 1
        card = rng.randrange(N_CARDS)
        if rng.random() < BURST_PROBABILITY:
            at = clock
            for _ in range(rng.randint(4, 12)):
                at += int(rng.uniform(5_000, 90_000))
                sequence += 1
                heapq.heappush(pending, (at, sequence, card))
        honest = {
            "kind": "transaction",
            "transaction_id": f"t{seed}-{index}",
            "card_id": f"card-{card:04d}",
            "merchant_id": f"m-{_merchant(rng, favourites[card]):03d}",
            "amount": round(_honest_amount(rng, typical[card]), 2),
            "channel": "online" if rng.random() < 0.35 else "pos",
            "event_time": clock,
        }
        yield honest, False
        index += 1


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


def _fraud(rng: random.Random, transaction_id: str, card: int, at: int, typical: float) -> dict[str, Any]:
    return {
        "kind": "transaction",
        "transaction_id": transaction_id,
        "card_id": f"card-{card:04d}",
        "merchant_id": f"m-{rng.randrange(RISKY_MERCHANTS) if rng.random() < 0.4 else rng.randrange(N_MERCHANTS):03d}",
        # Fraudsters test small before they spend big, so some burst transactions look ordinary.
        "amount": round(typical * (rng.uniform(0.3, 1.2) if rng.random() < 0.3 else rng.uniform(1.3, 4.5)), 2),
        "channel": "online" if rng.random() < 0.7 else "pos",
        "event_time": at,
    }
