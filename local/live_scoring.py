"""Live scoring: the model endpoint asked for a prediction of each live event a prediction is asked for, at the
moment the event happens, as a bank scores a transaction before it settles. Those are the predictions whose labels
arrive later (``StreamingSpec.feedback``) and that the monitor joins with them; the canary's generated traffic
replays recent rows instead, whose labels have mostly come already.

Requests go out from a small pool of threads off a bounded queue, so a slow endpoint never holds the live events
back; when the queue is full the event is not scored and counted (``dropped``)."""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from contract import Component
from local.traffic import instances

QUEUE_CAPACITY = 2_000


@dataclass
class ScoringCounts:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        """The counts as the demo's summary keeps them (``DemoResult.live_scoring``)."""
        with self.lock:
            return {"sent": self.sent, "ok": self.ok, "failed": self.failed, "dropped": self.dropped}


class LiveScorer:
    """Call it with each live event (``LiveEvents.listeners``); it scores those of a request kind at ``url``
    (V1 ``:predict``), each request with its own ``x-request-id`` (the inference log's key)."""

    def __init__(self, component: Component, url: str, threads: int = 2, headers: dict[str, str] | None = None) -> None:
        self.component = component
        self.url = url
        self.headers = dict(headers or {})
        self.counts = ScoringCounts()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_CAPACITY)
        self._workers = [threading.Thread(target=self._send, daemon=True, name="live-scoring") for _ in range(threads)]

    def __call__(self, event: dict[str, Any]) -> None:
        for row in instances(self.component, [event]):
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self.counts.add(dropped=1)

    def start(self) -> LiveScorer:
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> ScoringCounts:
        """Stops once what is queued has been sent; returns the counts."""
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=30)
        return self.counts

    def _send(self) -> None:
        import requests

        session = requests.Session()
        while (row := self._queue.get()) is not None:
            headers = {**self.headers, "x-request-id": uuid.uuid4().hex}
            try:
                reply = session.post(self.url, json={"instances": [row]}, headers=headers, timeout=10)
                ok = reply.status_code == 200
            except requests.RequestException:
                ok = False
            self.counts.add(sent=1, ok=int(ok), failed=int(not ok))
