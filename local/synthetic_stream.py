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


def timeline(component: Component, n_events: int, extra: int, seed: int) -> tuple[list[dict[str, Any]], ...]:
    """The generator's events shifted so that the backlog's last event is now; the rest lie in the future."""
    field_name = component.streaming.events.event_time
    events = list(component.generate(n_events + extra, 0, seed))
    shift = int(time.time() * 1000) - events[n_events - 1][field_name]
    for event in events:
        event[field_name] += shift
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
    events = list(component.generate(n_events, int(time.time() * 1000) - 3 * 3600 * 1000, 7))
    # Generators differ in pace: shift the batch so that its last event is two minutes old.
    span_ms = events[-1]["event_time"] - events[0]["event_time"]
    shift = int(time.time() * 1000) - 120_000 - span_ms - events[0]["event_time"]
    for event in events:
        event["event_time"] += shift
    produce(component, services.settings.kafka_bootstrap, events)
    advance_watermark(component, services.settings.kafka_bootstrap, int(time.time() * 1000))
    deadline = time.monotonic() + timeout_s
    while not (status := streaming.status()).caught_up:
        if time.monotonic() > deadline:
            raise EmbeddedError(f"streaming of {name} did not catch up: {status}")
        time.sleep(1)
    return Streamed(streaming, events)
