"""Keeps a component's raw events as parquet beside its feature history, so training can build labelled
examples (the entity rows of a point-in-time join) from the same events the features were computed from.

Only events that match the declared schema are kept; malformed ones are the streaming job's dead letters. In a
stream of several kinds every kind is kept, each with the fields its kind carries; the others are missing values
in the parquet (``<NA>`` for long and boolean fields, NaN for doubles, None for strings), so one table holds them
all and training finds both the events its examples come from and the label events.
Offsets are committed after the parquet file holding them is written: a crash replays a batch rather than
losing it, and readers drop the replayed duplicates (``read_events`` deduplicates whole rows).
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from typing import Any

import pandas as pd

from contract import Component
from contract.registry import load
from contract.streaming import topics
from pipelines.features.parts import read_parts, write_part
from pipelines.streaming.launch import ConsumerGroups, committing_consumer

ARCHIVE_FOLDER = "_events"  # feature group names cannot start with "_", so this never collides with a view
#: Columns of a stream of several kinds, where a field is absent from the kinds that do not carry it: pandas'
#: nullable types keep longs exact and every part file's column types the same whatever kinds it holds.
NULLABLE = {"string": "object", "long": "Int64", "double": "float64", "boolean": "boolean"}
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "long": (int,),
    "double": (int, float),
    "boolean": (bool,),
}


def events_path(offline_root: str) -> str:
    return f"{offline_root.rstrip('/')}/{ARCHIVE_FOLDER}"


def conforms(component: Component, event: Any) -> bool:
    """Whether an event has every field its kind carries (``EventSchema.carried``: all declared fields when the
    stream has one kind), each with its declared type (bools are not longs). An unknown kind carries nothing."""
    if not isinstance(event, dict):
        return False
    events = component.streaming.events
    kind = event.get(events.kind) if events.kind else None
    if events.kinds and not (isinstance(kind, str) and events.event_kind(kind)):
        return False
    for field in events.carried(kind):
        value = event.get(field.name)
        if not isinstance(value, PYTHON_TYPES[field.type]) or (field.type != "boolean" and isinstance(value, bool)):
            return False
    return True


def read_events(offline_root: str) -> pd.DataFrame:
    """Every archived event once, in event-time order of arrival files; empty frame when nothing is archived."""
    parts = read_parts(events_path(offline_root))
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


class EventArchive:
    """Consumes ``<component>.events`` and appends conforming events to parquet files."""

    def __init__(self, component: Component, bootstrap: str, offline_root: str, flush_every_s: float = 10.0) -> None:
        self.component = component
        self.folder = events_path(offline_root)
        self.flush_every_s = flush_every_s
        self.columns = [f.name for f in component.streaming.events.fields]
        groups = ConsumerGroups.of(component.name)
        self.consumer = committing_consumer(bootstrap, groups.archive, topics(component.name)["events"])
        self.pending: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.archived = 0
        self.stopping = False

    def run_once(self, max_records: int = 5000, timeout_s: float = 0.2) -> int:
        handled = 0
        for message in self.consumer.consume(num_messages=max_records, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise RuntimeError(f"event topic read failed: {error}")
                continue
            handled += 1
            try:
                event = json.loads(message.value() or b"")
            except ValueError:
                continue
            if conforms(self.component, event):
                self.pending.append(self._row(event))
        if time.monotonic() - self.last_flush >= self.flush_every_s:
            self.flush()
        return handled

    def _row(self, event: dict[str, Any]) -> dict[str, Any]:
        events = self.component.streaming.events
        if not events.kind:
            return {c: event[c] for c in self.columns}
        carried = {f.name for f in events.carried(event[events.kind])}
        return {c: event[c] if c in carried else None for c in self.columns}

    def flush(self) -> None:
        if self.pending:
            frame = pd.DataFrame(self.pending, columns=self.columns)
            if self.component.streaming.events.kinds:
                frame = frame.astype({f.name: NULLABLE[f.type] for f in self.component.streaming.events.fields})
            write_part(frame, self.folder)
            self.archived += len(frame)
            self.pending = []
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as error:
            if "NO_OFFSET" not in str(error):  # nothing consumed since the last commit
                print(f"offset commit deferred: {error}", flush=True)
        self.last_flush = time.monotonic()

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        try:
            while not self.stopping:
                self.run_once()
        finally:
            self.flush()
            self.consumer.close()
            print(f"archived {self.archived} events", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Archive a component's raw events for training.")
    parser.add_argument("--component", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--offline-root", required=True)
    parser.add_argument("--flush-every-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    component = load(args.component)
    print(f"archiving {topics(component.name)['events']} into {events_path(args.offline_root)}", flush=True)
    EventArchive(component, args.bootstrap, args.offline_root, args.flush_every_s).run()


if __name__ == "__main__":
    main()
