"""The streaming benchmark's peer: what a user would otherwise write by hand instead of the Flink job and pusher.

One Python process consuming ``<component>.events``, aggregating the component's hop windows in memory and pushing
each closed window to the Feast online store: no checkpoints, no dead letters, no history, its state lost on a crash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from contract import Component
from contract.streaming import topics
from pipelines.features.feast_repo import push_source_name


class HandWrittenConsumer:
    """The peer: one Python process, in-memory hop windows, pushes each closed window to the online store."""

    def __init__(self, component: Component, store: Any, bootstrap: str) -> None:
        from confluent_kafka import Consumer

        self.component = component
        self.store = store
        self.spec = component.streaming
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"handwritten-{time.time_ns()}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topics(component.name)["events"]])
        self.windows: dict[str, dict[tuple[Any, int], list[float]]] = {g.name: {} for g in self.spec.groups}
        self.partition_time: dict[int, int] = {}
        self.pushed_rows = 0
        self.progress: list[tuple[float, int]] = []
        self.freshness: list[tuple[float, tuple[str, pd.Timestamp]]] = []
        """Seconds from close to online of each window row written online, with its close (group, window end)."""

    def _add(self, event: dict[str, Any]) -> None:
        at, kind = event[self.spec.events.event_time], event.get(self.spec.events.kind or "")
        for group in self.spec.groups:
            if group.kinds and kind not in group.kinds:
                continue  # as the job does: a group counts only its kinds (fraud's transactions, not resolutions)
            size, slide = group.window.size_s * 1000, group.window.slide_s * 1000
            latest = (at // slide) * slide
            amount = float(event.get("amount", 0.0))
            for k in range(size // slide):
                acc = self.windows[group.name].setdefault(
                    (event[group.entity], latest - k * slide + size), [0, 0.0, -1e308]
                )
                acc[0] += 1
                acc[1] += amount
                acc[2] = max(acc[2], amount)

    def _emit(self, watermark: int) -> None:
        from feast.data_source import PushMode

        for group in self.spec.groups:
            closed = [key for key in self.windows[group.name] if key[1] <= watermark]
            if not closed:
                continue
            rows = []
            for key in closed:
                count, total, top = self.windows[group.name].pop(key)
                rows.append(
                    {
                        group.entity: key[0],
                        "window_end": key[1],
                        "event_count": int(count),
                        "amount_sum": total,
                        "amount_avg": total / count,
                        "amount_max": top,
                    }
                )
            frame = pd.DataFrame(rows)
            frame["window_end"] = pd.to_datetime(frame["window_end"], unit="ms", utc=True)
            # Same courtesy as the pusher: only the newest window per entity is worth an online write.
            newest = frame.sort_values("window_end").drop_duplicates(group.entity, keep="last")
            self.store.push(push_source_name(self.component, group), newest, to=PushMode.ONLINE)
            now = pd.Timestamp.now(tz="UTC")
            lateness = pd.Timedelta(seconds=self.spec.watermark_s)
            ages = (now - (newest["window_end"] + lateness)).dt.total_seconds()
            self.freshness += [(age, (group.name, end)) for age, end in zip(ages, newest["window_end"], strict=True)]
            self.pushed_rows += len(frame)
        self.progress.append((time.monotonic(), self.pushed_rows))

    def run(self, expected_rows: int, timeout_s: float) -> float:
        """Consume until ``expected_rows`` window rows were pushed; returns the seconds it took."""
        began = time.monotonic()
        marker = "__watermark__"
        while self.pushed_rows < expected_rows and time.monotonic() - began < timeout_s:
            for message in self.consumer.consume(5000, 0.2):
                if message.error():
                    continue
                event = json.loads(message.value())
                if marker not in event:
                    self._add(event)
                self.partition_time[message.partition()] = max(
                    self.partition_time.get(message.partition(), 0), event[self.spec.events.event_time]
                )
            if self.partition_time:
                self._emit(min(self.partition_time.values()) - self.spec.watermark_s * 1000)
        self.consumer.close()
        return time.monotonic() - began
