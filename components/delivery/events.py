"""Synthetic delivery orders with real signal, in one stream of two kinds: ``placed`` and, 15 to 70 minutes later,
``delivered`` with the outcome.

Restaurants sit in zones; couriers work shifts and are idle for long stretches between them (so some orders go to
a courier with no activity in the last hour). An order's delivery takes the restaurant's preparation (longer when
its kitchen is busy: its orders of the last 30 minutes), the ride (distance at the courier's own pace, slower when
the zone is busy: its orders of the last 15 minutes) and the courier's backlog (orders assigned and not yet
delivered), plus noise. The outcome is ``on_time`` up to 33 minutes, ``late`` up to 43, ``very_late`` beyond.
Kitchen load, zone demand and the courier's recent orders and deliveries are all streamed features, so the
outcome is predictable, but not exactly: windows are coarser than the generator's clocks, and noise remains.

A world that changes (``change_at_ms``, the event time of a regime change): kitchens short of staff and slower
couriers (rain, say). Orders placed from then on take 2 minutes longer to prepare, each order in the kitchen's last
30 minutes weighs 3.5 minutes instead of 2.2, and couriers ride 10% slower: on time falls from about 6 orders in 10
to 4 in 10, and busy kitchens fall furthest. A model trained before the change is calibrated to the old kitchens:
it is sure of on time where the order is now late (log loss 0.59 -> 1.25 on the test's seed, worse than the class
shares); one retrained after the change learns the new shares and the kitchen load's new weight (0.75). Orders
placed before the change keep their times; every delivery still arrives 15 to 70 minutes after its order.
Figures: ``components/README.md`` (Worlds that change).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from contract.generator import change_time

N_ZONES = 12
N_RESTAURANTS = 80
N_COURIERS = 120
ORDERS_PER_MIN = 3.0  # across the city, before zone surges
SURGE_PROBABILITY = 0.002  # per zone and minute
ON_TIME_MIN = 33.0
LATE_MIN = 43.0
MIN_DELIVERY_MIN, MAX_DELIVERY_MIN = 15.0, 70.0
MINUTE_MS = 60_000
KITCHEN_MIN_PER_ORDER = 2.2
"""Each order a kitchen took in the last 30 minutes adds this much to a new one's preparation."""
SLOW_PREP_EXTRA_MIN = 2.0
"""After the change, every kitchen's preparation takes this much longer ..."""
SLOW_KITCHEN_MIN_PER_ORDER = 3.5
"""... each recent order in it weighs this much instead of ``KITCHEN_MIN_PER_ORDER`` ..."""
SLOW_PACE_FACTOR = 1.1
"""... and couriers ride this much slower (minutes per km, as a multiple of their own pace)."""


def outcome(minutes: float) -> str:
    """The class of a delivery that took ``minutes``."""
    return "on_time" if minutes <= ON_TIME_MIN else "late" if minutes <= LATE_MIN else "very_late"


@dataclass
class _Courier:
    pace: float  # minutes per km
    on_shift: bool
    switch_at: int  # event time of the next shift change
    pending: int = 0  # orders assigned, not yet delivered


@dataclass
class _City:
    """The generator's own clocks: exact counts over trailing windows (the features approximate them)."""

    rng: random.Random
    zone_of: list[int]
    prep: list[float]
    couriers: list[_Courier]
    kitchen: list[deque[int]] = field(default_factory=list)
    zone: list[deque[int]] = field(default_factory=list)

    @staticmethod
    def recent(times: deque[int], now: int, minutes: int) -> int:
        while times and times[0] <= now - minutes * MINUTE_MS:
            times.popleft()
        return len(times)

    def shifts(self, now: int) -> None:
        for courier in self.couriers:
            while courier.switch_at <= now:
                courier.on_shift = not courier.on_shift
                hours = self.rng.uniform(2.0, 5.0) if courier.on_shift else self.rng.uniform(1.0, 4.0)
                courier.switch_at += int(hours * 60 * MINUTE_MS)

    def courier(self) -> int:
        """A courier on shift, the less busy more likely (dispatch balances, imperfectly)."""
        working = [i for i, c in enumerate(self.couriers) if c.on_shift] or list(range(len(self.couriers)))
        weights = [1.0 / (1 + 2 * self.couriers[i].pending) for i in working]
        return self.rng.choices(working, weights)[0]


def generate(
    n_events: int, start_ms: int, seed: int = 0, *, change_at_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield ``n_events`` events, orders placed and delivered interleaved in event-time order, from ``start_ms``.
    Orders placed from ``change_at_ms`` on meet short-staffed kitchens and slower couriers (module docstring);
    None: no change."""
    change_at_ms = change_time(change_at_ms)
    rng = random.Random(seed)
    couriers = []
    for _ in range(N_COURIERS):
        on_shift = rng.random() < 0.6
        couriers.append(_Courier(rng.uniform(2.5, 3.5), on_shift, start_ms + int(rng.uniform(0, 180) * MINUTE_MS)))
    city = _City(
        rng=rng,
        zone_of=[r % N_ZONES for r in range(N_RESTAURANTS)],
        prep=[rng.uniform(10.0, 13.0) for _ in range(N_RESTAURANTS)],
        couriers=couriers,
        kitchen=[deque() for _ in range(N_RESTAURANTS)],
        zone=[deque() for _ in range(N_ZONES)],
    )
    popularity = [rng.lognormvariate(0.0, 0.6) for _ in range(N_RESTAURANTS)]
    surge = [0.0] * N_ZONES
    deliveries: list[tuple[int, int, dict[str, Any]]] = []  # (event_time, sequence, event) in the future
    emitted = order = 0
    minute = 0
    while emitted < n_events:
        now = start_ms + minute * MINUTE_MS
        for z in range(N_ZONES):
            surge[z] = surge[z] * 0.93 + (rng.uniform(1.0, 2.5) if rng.random() < SURGE_PROBABILITY else 0.0)
        weights = [popularity[r] * (1 + surge[city.zone_of[r]]) for r in range(N_RESTAURANTS)]
        rate = ORDERS_PER_MIN * sum(weights) / sum(popularity)
        arrivals = sorted(now + rng.randrange(MINUTE_MS) for _ in range(_poisson(rng, rate)))
        for at in arrivals:
            while deliveries and deliveries[0][0] <= at:
                done = heapq.heappop(deliveries)[2]
                city.couriers[int(done["courier_id"][2:])].pending -= 1
                yield done
                emitted += 1
                if emitted >= n_events:
                    return
            city.shifts(at)
            restaurant = rng.choices(range(N_RESTAURANTS), weights)[0]
            slowed = change_at_ms is not None and at >= change_at_ms
            placed, delivered = _order(city, f"o{seed}-{order}", restaurant, at, slowed)
            order += 1
            heapq.heappush(deliveries, (delivered["event_time"], order, delivered))
            yield placed
            emitted += 1
            if emitted >= n_events:
                return
        minute += 1


def _order(
    city: _City, order_id: str, restaurant: int, at: int, slowed: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order placed at ``at`` and its delivery, timed by the city's state at that moment; ``slowed`` after the
    regime change."""
    rng = city.rng
    zone = city.zone_of[restaurant]
    kitchen_load = city.recent(city.kitchen[restaurant], at, 30)
    zone_load = city.recent(city.zone[zone], at, 15)
    courier_index = city.courier()
    courier = city.couriers[courier_index]
    distance = round(min(8.0, 0.4 + rng.gammavariate(2.0, 1.1)), 2)
    prep, per_order, pace = city.prep[restaurant], KITCHEN_MIN_PER_ORDER, courier.pace
    if slowed:
        prep, per_order, pace = prep + SLOW_PREP_EXTRA_MIN, SLOW_KITCHEN_MIN_PER_ORDER, pace * SLOW_PACE_FACTOR
    minutes = (
        prep
        + per_order * kitchen_load
        + distance * pace * (1 + 0.05 * zone_load)
        + 8.0 * courier.pending
        + rng.gauss(0.0, 2.0)
    )
    minutes = min(MAX_DELIVERY_MIN, max(MIN_DELIVERY_MIN, minutes))
    city.kitchen[restaurant].append(at)
    city.zone[zone].append(at)
    courier.pending += 1
    courier_id = f"c-{courier_index:03d}"
    placed = {
        "kind": "placed",
        "order_id": order_id,
        "restaurant_id": f"r-{restaurant:03d}",
        "zone_id": f"zone-{zone:02d}",
        "courier_id": courier_id,
        "distance_km": distance,
        "basket_value": round(max(5.0, rng.gauss(28.0, 9.0)), 2),
        "event_time": at,
    }
    delivered = {
        "kind": "delivered",
        "order_id": order_id,
        "courier_id": courier_id,
        "outcome": outcome(minutes),
        "delivery_minutes": round(minutes, 1),
        "event_time": at + int(minutes * MINUTE_MS),
    }
    return placed, delivered


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; the means here are a few per minute."""
    count, limit, product = 0, math.exp(-mean), rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
