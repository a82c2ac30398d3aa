"""Feature freshness: how long after a window closes its features are readable in the online store.

The pusher (``feature_pusher.py``) measures it and exports the histogram named here; ``monitoring.metrics``
re-exports the name for the alert rules and dashboards (monitoring may import pipelines, not the other way round).
Names and arithmetic only (no Prometheus client): monitoring imports it for the names.

What "window close" means. Flink closes a window when the watermark passes its end, i.e. once every partition has
shown an event time past ``window_end + watermark_s``. On a live stream event time follows the wall clock, so
that moment is ``window_end + watermark_s`` in wall time, and freshness measured from it covers everything after
the close: the watermark's own cadence, the job emitting the window, Kafka, the pusher's poll and the Feast write.
On a replayed backlog (old event times), ``window_end + watermark_s`` lies hours back and says nothing about wall
time; the window really closed when the job reached it, which the features record's Kafka timestamp bounds (the
job's producer stamps it when it sends the closed window). So a window is *live* when the job emitted it within
``LIVE_WITHIN_S`` of its event-time close, and measured from that close; otherwise it comes from a backlog (a
replay, or a job catching up after an outage, whose lag the streaming dashboard shows) and is measured from its
emission, the pusher's share only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

NAME = "mlstack_feature_freshness_seconds"
HELP = "Seconds from a window's close to its features being readable in the online store"
LABELS = ("component", "group")
"""The component, and the feature group (= Feast feature view) whose window closed."""
BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
"""Dense around the 1 s goal so its p99 is read, not guessed."""

LIVE_WITHIN_S = 120.0
"""A window emitted more than this long after ``window_end + watermark_s`` is from a backlog. Generous on purpose:
a live job that falls a minute behind must show a minute of staleness, not hide it."""


def freshness_s(
    window_end_s: NDArray[np.float64], emitted_s: NDArray[np.float64], online_s: float, watermark_s: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Seconds from each window's close to ``online_s`` (all Unix seconds), and whether each window was live.

    ``emitted_s`` holds the features records' Kafka timestamps (NaN where the broker gave none: that window is
    taken as live, the only close known)."""
    closed = window_end_s + watermark_s
    live = ~(emitted_s - closed > LIVE_WITHIN_S)  # NaN compares False: live
    return np.where(live, online_s - closed, online_s - emitted_s), live
