"""Generated traffic for a model endpoint: requests built from a component's recent events (of the kinds a
prediction is asked for), sent at a steady rate from a few threads, each response recorded (status, the slot
HAProxy chose, latency). The demo, the canary tests and the serving benchmark drive endpoints with it."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from contract import Component


@dataclass
class Response:
    at: float
    status: int
    slot: str
    latency_s: float


@dataclass
class TrafficLog:
    responses: list[Response] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, response: Response) -> None:
        with self.lock:
            self.responses.append(response)

    def since(self, at: float) -> list[Response]:
        with self.lock:
            return [r for r in self.responses if r.at >= at]

    def by_slot(self, responses: list[Response] | None = None) -> Counter[tuple[str, int]]:
        return Counter((r.slot, r.status) for r in (responses if responses is not None else self.responses))


def request_kinds(component: Component) -> tuple[str, ...]:
    """The event kinds a prediction is asked for: those that carry every entity key and request field (an order
    placed, not its delivery), never the kind that carries labels (``StreamingSpec.feedback``), even when it
    carries them all (demand's actual count names its zone and forecast). Empty for a stream of one kind, where
    every event is one.

    Raises:
        ValueError: the stream has kinds but none carries all of them (the component could never be called).
    """
    schema, feedback = component.streaming.events, component.streaming.feedback
    if not schema.kinds:
        return ()
    fields = {*component.entity_keys(), *component.model.request_fields}
    labels = feedback.kind if feedback is not None else None
    kinds = tuple(
        k.name for k in schema.kinds if k.name != labels and fields <= {f.name for f in schema.carried(k.name)}
    )
    if not kinds:
        raise ValueError(
            f"component {component.name!r}: no event kind carries every request field ({', '.join(sorted(fields))})"
        )
    return kinds


def instances(component: Component, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Request bodies' rows (entity keys + request fields) from events, in their order: one per event of a kind
    a prediction is asked for (``request_kinds``), none for the others (a delivery with its outcome, a card
    transaction's resolution: labels, not requests). A row never carries the label, which is never a request
    field."""
    fields = [*component.entity_keys(), *component.model.request_fields]
    kind, wanted = component.streaming.events.kind or "", request_kinds(component)
    return [{name: event[name] for name in fields} for event in events if not wanted or event.get(kind) in wanted]


class TrafficGenerator:
    """Sends single-row V1 predictions to ``url`` at ``rate`` per second until stopped."""

    def __init__(
        self,
        url: str,
        rows: list[dict[str, Any]],
        rate: float = 100.0,
        threads: int = 4,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})  # e.g. the consumer's key: {"Authorization": "Bearer <key>"}
        self.rows = rows
        self.rate = rate
        self.threads = threads
        self.log = TrafficLog()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> TrafficGenerator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._send, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _send(self, index: int) -> None:
        import requests

        rng = random.Random(index)
        session = requests.Session()
        session.headers.update(self.headers)
        interval = self.threads / self.rate
        next_at = time.monotonic() + rng.uniform(0, interval)
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
            body = {"instances": [rng.choice(self.rows)]}
            began = time.perf_counter()
            try:
                reply = session.post(self.url, json=body, timeout=10)
                status, slot = reply.status_code, reply.headers.get("x-mlstack-slot", "?")
            except requests.RequestException:
                status, slot = 0, "?"
            self.log.add(Response(time.time(), status, slot, time.perf_counter() - began))
