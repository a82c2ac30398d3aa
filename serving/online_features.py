"""Online features for a batch of requests, with the views' TTL applied: Feast's online store returns the last
value it holds however old it is, but a window result older than its view's TTL no longer describes the entity's
present, so it is treated as absent (NaN) exactly as the training set's point-in-time join treats it. An entity the
store never saw is one without recent activity: every feature NaN, as in training (``tests/local/test_parity.py``
requires both paths to agree).

When the store is unreachable or slower than a budget, ``read`` answers without features (every one NaN, the
model's own missing handling, as for an entity never seen) and says the answer is degraded, so the server still
answers. Two bounds, each for what the other cannot do:

- the read runs on one worker thread and the request waits at most ``timeout_s`` for it: the only bound on the
  whole call (Feast's own work, a connection being made, every reply of its Redis pipeline), whatever is slow;
- the server's Redis client gets socket timeouts of the same budget and no retries (``bounded_store``): redis-py's
  default retries a failed command three times with a jittered backoff of up to 2, 4 and 8 s, and a stopped Redis
  (SIGSTOP) still accepts connections and then never answers, so without them the worker would hang for seconds
  or forever, and every later read would queue behind it. With them a stuck read gives the worker back within
  about the budget, and reads after Redis returns go through at once (the pool reconnects).
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract import Component

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 0.1
"""The feature read's budget: a healthy read takes about a millisecond (``benchmarks/serving_latency.py``), and
the serving SLO is p99 under 10 ms, so a read 100x slower than usual is answered without it."""


def bounded_store(repo: str | Path, timeout_s: float) -> Any:
    """Feast's store for ``repo`` with its Redis client bounded for serving: socket (and connect) timeouts of
    ``timeout_s`` and no retries, appended to the repo's connection string (Feast passes its ``key=value`` parts,
    JSON-decoded, to ``redis.Redis``: ``retry=null`` is ``retry=None``, a connection without retries). Only this
    process's client changes; the pusher writing the same store keeps the repo's settings."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    online = store.config.online_store
    if getattr(online, "type", "") == "redis":
        bounds = f"socket_timeout={timeout_s},socket_connect_timeout={timeout_s},retry=null"
        online.connection_string = f"{online.connection_string},{bounds}"
    return store


class OnlineFeatures:
    def __init__(self, component: Component, store: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.component = component
        self.store = store
        self.timeout_s = timeout_s
        # One worker: Feast's client is used from one thread at a time, as it is without the budget.
        self.reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="feature-read")
        self.degraded = False
        """Whether the last read was degraded: a change is logged once, not every request."""
        self.refs = component.feature_refs()
        self.keys = component.entity_keys()
        groups = {g.name: g for g in component.streaming.groups}
        views = {name: groups[name].window.size_s + groups[name].window.slide_s for name in component.feature_groups()}
        # (ref, column, its timestamp column, TTL): resolved once, not on every request.
        self.columns = [
            (ref, ref.replace(":", "__"), f"{ref.replace(':', '__')}__ts", views[ref.split(":", 1)[0]])
            for ref in self.refs
        ]

    def lookup(self, request: Mapping[str, Sequence[Any]], now: datetime | None = None) -> pd.DataFrame:
        """The request's columns (``{field: [value per row]}``, or a DataFrame) with every feature column
        (``<view>__<feature>``) joined; NaN where absent or expired. Unbounded: a store error raises."""
        return pd.DataFrame(self.joined(request, now), copy=False)

    def read(self, request: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Any], bool]:
        """``joined`` within the budget, and whether it is degraded: when the store fails or is slower than
        ``timeout_s``, the request's columns with every feature NaN (and ``True``)."""
        future = self.reader.submit(self.joined, request)
        try:
            joined = future.result(self.timeout_s)
        except Exception as error:  # a timeout, or the store's error (connection refused, a socket timeout, ...)
            future.cancel()  # not started yet (the worker is stuck on an earlier read): never sent
            if not self.degraded:
                reason = f"no answer within {self.timeout_s * 1000:g} ms" if isinstance(error, TimeoutError) else error
                log.warning("online store unavailable (%s): answering without features until it is back", reason)
                self.degraded = True
            return self.absent(request), True
        if self.degraded:
            log.warning("online store answering again: features are served")
            self.degraded = False
        return joined, False

    def absent(self, request: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
        """The request's columns with every feature column NaN."""
        rows = len(next(iter(request.values())))
        joined: dict[str, Any] = {name: list(column) for name, column in request.items()}
        for _ref, column, _stamp, _ttl in self.columns:
            joined[column] = np.full(rows, np.nan)
        return joined

    def joined(self, request: Mapping[str, Sequence[Any]], now: datetime | None = None) -> dict[str, Any]:
        """``lookup`` as columns (``{name: list or float64 array}``), the frame not yet built.

        This runs on every request, so it stays in plain lists and numpy and builds one DataFrame at the end: a
        pandas frame per step (records, per-feature Series, a concat) cost several times the Feast read itself.
        """
        keys = self.keys
        key_values = [list(request[key]) for key in keys]
        entity_rows = [dict(zip(keys, values, strict=True)) for values in zip(*key_values, strict=True)]
        response = self.store.get_online_features(features=self.refs, entity_rows=entity_rows, full_feature_names=True)
        values = response.to_dict(include_event_timestamps=True)
        now_s = (now or datetime.now(tz=UTC)).timestamp()
        joined: dict[str, Any] = {name: list(column) for name, column in request.items()}
        for _ref, column, stamp_column, ttl_s in self.columns:
            stamps = np.asarray(values[stamp_column], dtype="float64")  # epoch seconds; 0 when absent
            fresh = (stamps > 0) & (now_s - stamps <= ttl_s)
            # Feast returns numbers or None (absent, or an entity it never saw): as float64, None is NaN.
            joined[column] = np.where(fresh, np.asarray(values[column], dtype="float64"), np.nan)
        return joined
