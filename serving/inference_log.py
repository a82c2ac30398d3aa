"""The inference log: every row a model server scores, as served, on the Kafka topic ``<component>.predictions``
(``contract.streaming.topics``), for the monitor to join with the labels on ``<component>.labels`` and to profile
what the model saw.

A request never waits for it and never fails because of it: the request's path only puts one tuple (its columns,
features and output, already computed) on a bounded queue; a background thread encodes the records and hands them
to confluent-kafka's producer, whose own threads batch and send them. When the queue is full (Kafka slow or gone
and the producer's buffer full behind it), the request's records are dropped and counted
(``mlstack_inference_log_dropped_total``, by reason); acknowledged records are counted as written.

One record per scored row, JSON, keyed by the request id (``serving/README.md`` documents the fields)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, NamedTuple

import numpy as np
import orjson

from contract import Component
from contract.streaming import topics
from serving import metrics

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 10_000
"""Requests waiting to be encoded; at the benchmark's 1,000 requests/s, ten seconds of Kafka being away."""
POLL_S = 0.02
"""How often the thread takes what is queued (and serves the producer's delivery reports): records wait at most
this long before the producer's own batching (``linger.ms``) begins."""


class Served(NamedTuple):
    """One request's scored rows, as the server answered them."""

    request_id: str
    time_ms: int
    joined: dict[str, Any]
    """The request's columns and the features as served (``OnlineFeatures.joined``), one value per row."""
    output: np.ndarray
    """The checked model output: (rows,) or (rows, classes)."""
    degraded: bool


class InferenceLog:
    """Records served rows on ``<component>.predictions`` through ``bootstrap``, off the request's path."""

    def __init__(self, component: Component, version: str, bootstrap: str, capacity: int = QUEUE_CAPACITY) -> None:
        from confluent_kafka import Producer

        self.component = component.name
        self.version = version
        self.topic = topics(component.name)["predictions"]
        self.task = component.model.task
        self.classes = list(component.model.classes) if self.task == "multiclass" else []
        self.entities = component.entity_keys()
        self.fields = [f for f in component.model.request_fields if f not in self.entities]
        self.features = [ref.replace(":", "__") for ref in component.feature_refs()]
        labels = {metrics.COMPONENT: component.name, metrics.VERSION: version}
        self.written = metrics.LOG_WRITTEN.labels(**labels)
        self.dropped_full = metrics.LOG_DROPPED.labels(**labels, **{metrics.REASON: metrics.QUEUE_FULL})
        self.not_delivered = metrics.LOG_DROPPED.labels(**labels, **{metrics.REASON: metrics.NOT_DELIVERED})
        self.queue: queue.Queue[Served | None] = queue.Queue(capacity)
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                # Records gather for up to 50 ms into one compressed batch: fewer, larger requests to the broker.
                "linger.ms": 50,
                "compression.type": "lz4",
                # A record Kafka has not taken after 30 s is dropped (and counted) rather than kept for 5 minutes.
                "message.timeout.ms": 30_000,
                # log_level 3: errors only; a broker restarting is retried by the producer, not news per record.
                "log_level": 3,
            }
        )
        self.thread = threading.Thread(target=self._drain, name="inference-log", daemon=True)
        self.thread.start()

    def record(self, served: Served) -> None:
        """Queue one request's rows; never blocks (a full queue drops them and counts)."""
        try:
            self.queue.put_nowait(served)
        except queue.Full:
            self.dropped_full.inc(len(served.output))

    def records(self, served: Served) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` per row: the request id and the record's JSON."""
        joined, output = served.joined, served.output
        columns = {name: _values(joined[name]) for name in (*self.entities, *self.fields, *self.features)}
        scores = output.tolist()
        out = []
        key = served.request_id.encode()
        for row in range(len(output)):
            prediction: dict[str, Any]
            if self.task == "multiclass":
                row_scores = scores[row]
                label = self.classes[max(range(len(row_scores)), key=row_scores.__getitem__)]
                prediction = {"scores": dict(zip(self.classes, row_scores, strict=True)), "label": label}
            elif self.task == "regression":
                prediction = {"estimate": scores[row]}
            else:
                prediction = {"score": scores[row]}
            record = {
                "request_id": served.request_id,
                "row": row,
                "event_time": served.time_ms,
                "component": self.component,
                "model_version": self.version,
                "entities": {name: columns[name][row] for name in self.entities},
                "request": {name: columns[name][row] for name in self.fields},
                "features": {name: columns[name][row] for name in self.features},
                "prediction": prediction,
                "degraded": served.degraded,
            }
            out.append((key, orjson.dumps(record)))  # NaN (an absent feature) is written as null
        return out

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``) and stop the thread."""
        try:
            self.queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self.thread.join(timeout_s)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is None:
            self.written.inc()
        else:
            self.not_delivered.inc()

    def _drain(self) -> None:
        # Wakes every POLL_S and takes everything queued, rather than waking per request: each wake-up is a thread
        # switch and a GIL hand-over that the serving thread pays for under load.
        stopping = False
        while not stopping:
            time.sleep(POLL_S)
            while True:
                try:
                    served = self.queue.get_nowait()
                except queue.Empty:
                    break
                if served is None:
                    stopping = True
                    break
                self._send(served)
            self.producer.poll(0)
        self.producer.flush(5)

    def _send(self, served: Served) -> None:
        try:
            encoded = self.records(served)
        except Exception:  # a bug here must not stop the log: say it, count the rows, go on
            log.exception("inference log: cannot encode a request's records; dropped")
            self.not_delivered.inc(len(served.output))
            return
        for key, value in encoded:
            try:
                self.producer.produce(self.topic, value, key, on_delivery=self._delivered)
            except BufferError:  # the producer's own buffer is full: Kafka has been away for a while
                self.not_delivered.inc()


def _values(column: Any) -> list[Any]:
    """A column as JSON-ready Python values (numpy arrays and scalars become floats, ints, strings)."""
    return (
        column.tolist()
        if isinstance(column, np.ndarray)
        else [v.item() if isinstance(v, np.generic) else v for v in column]
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000
