"""Synthetic delivery orders with real signal.

Each zone has its own base rate of orders. On top of it, each zone's demand drifts slowly (a mean-reverting random
walk), and now and then a zone surges (a match ends, it starts to rain) and the surge fades over a quarter of an
hour. Orders arrive as a Poisson process at that rate, so
the next five minutes are predictable from the last minutes and the last hour, but not exactly: the count over the
last five minutes alone (the naive forecast) carries the Poisson noise twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

N_ZONES = 12
MEAN_RATE_PER_MIN = 6.0  # orders per zone and minute, before drift and surges
SURGE_PROBABILITY = 0.001  # per zone and minute
SURGE_HALF_LIFE_MIN = 12.0


def zone_id(zone: int) -> str:
    return f"zone-{zone:02d}"


def generate(n_events: int, start_ms: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` orders in event-time order, starting at ``start_ms``."""
    rng = random.Random(seed)
    base = [MEAN_RATE_PER_MIN * rng.lognormvariate(0.0, 0.5) for _ in range(N_ZONES)]
    basket = [rng.uniform(18.0, 45.0) for _ in range(N_ZONES)]
    drift = [0.0] * N_ZONES  # log-multiplier, mean-reverting
    surge = [0.0] * N_ZONES  # extra multiplier, decaying
    decay = 0.5 ** (1 / SURGE_HALF_LIFE_MIN)
    emitted = 0
    minute = 0
    while emitted < n_events:
        arrivals: list[tuple[int, int]] = []
        for zone in range(N_ZONES):
            drift[zone] = 0.99 * drift[zone] + rng.gauss(0.0, 0.005)
            surge[zone] *= decay
            if rng.random() < SURGE_PROBABILITY:
                surge[zone] += rng.uniform(0.5, 1.2)
            rate = base[zone] * math.exp(drift[zone]) * (1.0 + surge[zone])
            arrivals += [(rng.randrange(60_000), zone) for _ in range(_poisson(rng, rate))]
        for offset, zone in sorted(arrivals):
            if emitted >= n_events:
                return
            yield {
                "order_id": f"o{seed}-{emitted}",
                "zone_id": zone_id(zone),
                "basket_value": round(max(3.0, rng.gauss(basket[zone], basket[zone] * 0.4)), 2),
                "event_time": start_ms + minute * 60_000 + offset,
            }
            emitted += 1
        minute += 1


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method in chunks, exact for the means used here (tens per minute)."""
    count = 0
    while mean > 0:
        step = min(mean, 30.0)
        mean -= step
        limit, product = math.exp(-step), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
    return count
