"""A component's synthetic events streamed into the embedded stack (Kafka -> Flink -> Feast).

Two ways of using the generator: the demo's (a backlog whose last event is now, then the rest live, each event sent
when its event time comes, while later phases run), and a backlog streamed and waited for until all is in Feast
(the local test tier's fixtures and the training benchmark). Both read back what arrived online the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from contract import Component
from contract.registry import load
from local.errors import EmbeddedError
from local.services import EmbeddedServices
from local.streaming import EmbeddedStreaming
from pipelines.streaming.producer import advance_watermark, produce

MINUTE_MS = 60_000


def generated_at(
    component: Component, n_events: int, seed: int, index: int, at_ms: int, change_at_ms: int | None = None
) -> list[dict[str, Any]]:
    """The generator's ``n_events``, started so that event ``index`` falls at ``at_ms`` or up to a minute before;
    with ``change_at_ms``, the world changes at that event time (the generator's regime change).

    Started there rather than generated and shifted: events may name times of their own (demand's forecast ids
    name the minute a forecast starts), which shifting the event-time field would leave behind. A first run from
    0 measures where event ``index`` falls; the second starts on a whole minute too, so a generator that counts in
    whole minutes yields the same events, only later. The change is an absolute event time, so it is given only to
    the second run (events before it are the stationary stream's either way)."""
    probe = list(component.generate(n_events, 0, seed))
    start = at_ms - probe[index][component.streaming.events.event_time]
    return list(component.generate(n_events, start - start % MINUTE_MS, seed, change_at_ms=change_at_ms))


def timeline(
    component: Component, n_events: int, extra: int, seed: int, change_after_s: float | None = None
) -> tuple[list[dict[str, Any]], ...]:
    """The generator's events placed so that the backlog's last event is now (or up to a minute ago); the rest
    lie in the future. With ``change_after_s``, the world changes that many seconds from now (in the live part)."""
    now_ms = int(time.time() * 1000)
    change = None if change_after_s is None else now_ms + int(change_after_s * 1000)
    events = generated_at(component, n_events + extra, seed, n_events - 1, now_ms, change_at_ms=change)
    return events[:n_events], events[n_events:]


class LiveEvents:
    """Sends the generator's events after the backlog at their own pace (each when its event time comes), in a
    thread, so windows close in real time while the later phases run: that is what freshness measures."""

    def __init__(self, component: Component, bootstrap: str, events: list[dict[str, Any]]) -> None:
        self.component = component
        self.bootstrap = bootstrap
        self.events = events
        self.sent = 0
        self.error: BaseException | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        """Called with each event as it is sent (``local.live_scoring.LiveScorer`` scores it then)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-events", daemon=True)

    def _due(self) -> Iterator[dict[str, Any]]:
        field_name = self.component.streaming.events.event_time
        for event in self.events:
            while not self._stop.is_set() and event[field_name] > time.time() * 1000:
                self._stop.wait(min(0.2, event[field_name] / 1000 - time.time()))
            if self._stop.is_set():
                return
            self.sent += 1
            for listener in self.listeners:
                listener(event)
            yield event

    def _run(self) -> None:
        try:
            produce(self.component, self.bootstrap, self._due())
        except BaseException as error:  # reported by stop(): a thread cannot raise into its caller
            self.error = error

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        """Stops sending; returns how many live events were sent (raises what stopped the thread early)."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise EmbeddedError(f"live events of {self.component.name} stopped: {self.error}")
        return self.sent


def online_sample(component: Component, streaming: EmbeddedStreaming, events: list[dict[str, Any]]) -> list[Any]:
    """A few features of the newest entities of ``events`` as the online store serves them (model servers read
    them there): one row per entity, at most five entities and four features."""
    group = component.streaming.groups[0]
    entities = list(dict.fromkeys(e[group.entity] for e in reversed(events)))[:5]
    refs = [f"{g.name}:{f}" for g in component.streaming.groups if g.entity == group.entity for f in g.feature_names()]
    online = (
        streaming.feature_store()
        .get_online_features(
            features=refs[:4], entity_rows=[{group.entity: e} for e in entities], full_feature_names=True
        )
        .to_dict()
    )
    return [{k: v[i] for k, v in online.items()} for i in range(len(entities))]


@dataclass
class Streamed:
    streaming: EmbeddedStreaming
    """The component's streaming, left running (its caller stops it)."""
    events: list[dict[str, Any]]
    """The events sent, as sent."""


def stream_backlog(
    services: EmbeddedServices,
    name: str,
    n_events: int,
    progress: Callable[[str], None] = print,
    timeout_s: float = 300,
) -> Streamed:
    """Reset the component's stream, stream ``n_events`` ending a few minutes ago, wait until all is in Feast.

    Raises:
        EmbeddedError: the stream did not catch up (every event checkpointed, archived, its features in Feast)
            within ``timeout_s``.
    """
    component = load(name)
    streaming = EmbeddedStreaming(services, component, flush_every_s=1.0)
    streaming.reset(progress=progress)
    streaming.start(progress=progress)
    # Generators differ in pace: the batch is placed so that its last event is two to three minutes old.
    events = generated_at(component, n_events, 7, n_events - 1, int(time.time() * 1000) - 120_000)
    produce(component, services.settings.kafka_bootstrap, events)
    advance_watermark(component, services.settings.kafka_bootstrap, int(time.time() * 1000))
    deadline = time.monotonic() + timeout_s
    while not (status := streaming.status()).caught_up:
        if time.monotonic() > deadline:
            raise EmbeddedError(f"streaming of {name} did not catch up: {status}")
        time.sleep(1)
    return Streamed(streaming, events)
