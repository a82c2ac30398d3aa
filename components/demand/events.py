"""Synthetic delivery orders with real signal, and the actual demand each forecast slot saw.

Each zone has its own base rate of orders. On top of it, each zone's demand drifts slowly (a mean-reverting random
walk), and now and then a zone surges (a match ends, it starts to rain) and the surge fades over a quarter of an
hour. Orders arrive as a Poisson process at that rate, so
the next five minutes are predictable from the last minutes and the last hour, but not exactly: the count over the
last five minutes alone (the naive forecast) carries the Poisson noise twice.

One stream of two kinds: ``order`` events, and per zone and minute boundary ``t`` an ``actual``: the zone's orders
in ``[t, t + 5 min)``, published once those five minutes have passed, 5 to 60 seconds late (the count is settled
and sent by a batch that runs behind the clock). Both carry ``forecast_id``, the zone and the minute ``t`` a forecast
starts at: an order names the forecast a dispatcher asks for when it comes in (the one starting at the minute it
falls in), and a forecast's request sends it, so the actual can be joined to what was predicted.

A world that changes (``change_at_ms``, the event time of a regime change): a seasonality break. From the first
minute at or after it, every other zone moves to scheduled delivery in half-hourly slots, and its demand rises and
falls in a wave of +-50% around its level with a 30-minute period (orders bunch up towards a slot's cut-off and thin
out after it). A model trained before the change learned that a rise over the last minutes is noise or a fading
surge, and forecasts back towards the zone's level; in the wave a rise goes on and then turns, so it misses both
ways (MAE 3.9 -> 6.9 orders on the test's seed); one retrained on the waves reads their phase from how the last 5
and 15 minutes compare with the hour (4.95). A level shift alone would not do: the model predicts relative to the
zone's recent level, so it recovers within the hour. Actuals are published as before, and nothing is drawn
differently before the change. Figures: ``components/README.md`` (Worlds that change).
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from contract.generator import change_time

N_ZONES = 12
MEAN_RATE_PER_MIN = 6.0  # orders per zone and minute, before drift and surges
SURGE_PROBABILITY = 0.001  # per zone and minute
SURGE_HALF_LIFE_MIN = 12.0
MINUTE_MS = 60_000
HORIZON_S = 300
"""A forecast counts the orders of the five minutes from its start."""
PUBLISH_DELAY_S = (5, 60)
"""An actual is published this long after its five minutes end (uniform)."""
MAX_DELAY_S = HORIZON_S + PUBLISH_DELAY_S[1]
"""The latest an actual arrives after the start of the forecast it settles."""
SLOTTED_ZONES = frozenset(range(0, N_ZONES, 2))
"""The zones that move to scheduled delivery slots at the regime change (every other zone)."""
SLOT_MIN = 30
"""A slot every half hour: after the change, a slotted zone's demand rises and falls with this period ..."""
SLOT_WAVE = 0.5
"""... by this share of its level either way (a sine wave from the change on)."""


def zone_id(zone: int) -> str:
    return f"zone-{zone:02d}"


def forecast_id(zone: str, start_ms: int) -> str:
    """The forecast of ``zone``'s orders in the five minutes from ``start_ms`` (the minute it falls in):
    ``zone-03@2026-11-30T07:12Z``. A client computes it from the zone and the time it asks."""
    minute = start_ms - start_ms % MINUTE_MS
    return f"{zone}@{datetime.fromtimestamp(minute / 1000, UTC).strftime('%Y-%m-%dT%H:%MZ')}"


def generate(
    n_events: int, start_ms: int, seed: int = 0, *, change_at_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` events in event-time order from ``start_ms``: orders and, per zone and whole minute ``t``
    from ``start_ms`` on, the actual count of ``[t, t + 5 min)`` once it is known. From ``change_at_ms`` on, the
    slotted zones' demand moves in a half-hourly wave (module docstring); None: no change."""
    change_at_ms = change_time(change_at_ms)
    rng = random.Random(seed)
    delays = random.Random(f"demand-actuals-{seed}")  # its own stream: the orders do not depend on it
    base = [MEAN_RATE_PER_MIN * rng.lognormvariate(0.0, 0.5) for _ in range(N_ZONES)]
    basket = [rng.uniform(18.0, 45.0) for _ in range(N_ZONES)]
    drift = [0.0] * N_ZONES  # log-multiplier, mean-reverting
    surge = [0.0] * N_ZONES  # extra multiplier, decaying
    decay = 0.5 ** (1 / SURGE_HALF_LIFE_MIN)
    placed: list[list[int]] = [[] for _ in range(N_ZONES)]  # each zone's order times so far, ascending
    actuals: list[tuple[int, int, dict[str, Any]]] = []  # (event_time, sequence, actual) still to come
    settle = -(-start_ms // MINUTE_MS) * MINUTE_MS  # the next minute boundary whose actuals are not scheduled
    emitted = sequence = 0
    minute = 0
    while emitted < n_events:
        arrivals: list[tuple[int, int]] = []
        now = start_ms + minute * MINUTE_MS
        for zone in range(N_ZONES):
            drift[zone] = 0.99 * drift[zone] + rng.gauss(0.0, 0.005)
            surge[zone] *= decay
            if rng.random() < SURGE_PROBABILITY:
                surge[zone] += rng.uniform(0.5, 1.2)
            rate = base[zone] * math.exp(drift[zone]) * (1.0 + surge[zone])
            if change_at_ms is not None and zone in SLOTTED_ZONES and now >= change_at_ms:
                rate *= _slot_wave(now - change_at_ms)
            arrivals += [(rng.randrange(60_000), zone) for _ in range(_poisson(rng, rate))]
        arrivals.sort()
        for offset, zone in arrivals:
            placed[zone].append(start_ms + minute * MINUTE_MS + offset)
        minute += 1
        # Every boundary whose five minutes this minute completed: its actuals, published a little later.
        while settle + HORIZON_S * 1000 <= start_ms + minute * MINUTE_MS:
            for zone in range(N_ZONES):
                times = placed[zone]
                count = bisect.bisect_left(times, settle + HORIZON_S * 1000) - bisect.bisect_left(times, settle)
                at = settle + HORIZON_S * 1000 + int(delays.uniform(*PUBLISH_DELAY_S) * 1000)
                actual = {
                    "kind": "actual",
                    "zone_id": zone_id(zone),
                    "forecast_id": forecast_id(zone_id(zone), settle),
                    "orders_next_5m": count,
                    "event_time": at,
                }
                sequence += 1
                heapq.heappush(actuals, (at, sequence, actual))
            settle += MINUTE_MS
        for offset, zone in arrivals:
            at = start_ms + (minute - 1) * MINUTE_MS + offset
            while actuals and actuals[0][0] <= at:
                if emitted >= n_events:
                    return
                yield heapq.heappop(actuals)[2]
                emitted += 1
            if emitted >= n_events:
                return
            yield {
                "kind": "order",
                "order_id": f"o{seed}-{emitted}",
                "zone_id": zone_id(zone),
                "forecast_id": forecast_id(zone_id(zone), at),
                "basket_value": round(max(3.0, rng.gauss(basket[zone], basket[zone] * 0.4)), 2),
                "event_time": at,
            }
            emitted += 1


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


def _slot_wave(since_change_ms: int) -> float:
    """A slotted zone's demand multiplier ``since_change_ms`` after the change: the slots' half-hourly wave."""
    return 1.0 + SLOT_WAVE * math.sin(2 * math.pi * since_change_ms / (SLOT_MIN * MINUTE_MS))
