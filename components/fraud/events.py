"""Synthetic card transactions with real signal.

Most cards spend steadily around their own typical amount at a few merchants. Now and then a card is
compromised: a burst of several transactions within minutes, larger than the card's habit, mostly online and at a
small set of merchants that fraudsters favour. Every transaction in a burst is labelled fraud, so velocity
(transactions per window), amount relative to the card's own history and merchant activity carry the signal.
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


def generate(n_events: int, start_ms: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` transactions in event-time order, starting at ``start_ms``."""
    rng = random.Random(seed)
    typical = [rng.lognormvariate(3.3, 0.6) for _ in range(N_CARDS)]
    favourites = [rng.sample(range(RISKY_MERCHANTS, N_MERCHANTS), 4) for _ in range(N_CARDS)]
    pending: list[tuple[int, int, int]] = []  # (event_time, sequence, card) of queued burst transactions
    clock = start_ms
    sequence = 0
    emitted = 0
    while emitted < n_events:
        clock += int(rng.expovariate(1 / MEAN_GAP_MS)) + 1
        while pending and pending[0][0] <= clock and emitted < n_events:
            at, _, card = heapq.heappop(pending)
            yield _fraud(rng, emitted, card, at, typical[card])
            emitted += 1
        if emitted >= n_events:
            break
        card = rng.randrange(N_CARDS)
        if rng.random() < BURST_PROBABILITY:
            at = clock
            for _ in range(rng.randint(4, 12)):
                at += int(rng.uniform(5_000, 90_000))
                sequence += 1
                heapq.heappush(pending, (at, sequence, card))
        yield {
            "transaction_id": f"t{seed}-{emitted}",
            "card_id": f"card-{card:04d}",
            "merchant_id": f"m-{_merchant(rng, favourites[card]):03d}",
            "amount": round(_honest_amount(rng, typical[card]), 2),
            "channel": "online" if rng.random() < 0.35 else "pos",
            "event_time": clock,
            "is_fraud": 0,
        }
        emitted += 1


def _honest_amount(rng: random.Random, typical: float) -> float:
    if rng.random() < BIG_PURCHASE:
        return typical * rng.uniform(1.5, 5.0)
    return max(1.0, rng.gauss(typical, typical * 0.3))


def _merchant(rng: random.Random, favourites: list[int]) -> int:
    """Mostly one of the card's usual merchants, sometimes any."""
    return rng.choice(favourites) if rng.random() < 0.8 else rng.randrange(N_MERCHANTS)


def _fraud(rng: random.Random, index: int, card: int, at: int, typical: float) -> dict[str, Any]:
    return {
        "transaction_id": f"f{index}",
        "card_id": f"card-{card:04d}",
        "merchant_id": f"m-{rng.randrange(RISKY_MERCHANTS) if rng.random() < 0.4 else rng.randrange(N_MERCHANTS):03d}",
        # Fraudsters test small before they spend big, so some burst transactions look ordinary.
        "amount": round(typical * (rng.uniform(0.3, 1.2) if rng.random() < 0.3 else rng.uniform(1.3, 4.5)), 2),
        "channel": "online" if rng.random() < 0.7 else "pos",
        "event_time": at,
        "is_fraud": 1,
    }
