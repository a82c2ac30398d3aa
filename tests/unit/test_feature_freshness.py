"""Feature freshness as the pusher measures it (``pipelines.streaming.freshness``): from a live window's close, or
from a backlog window's emission; and the series it exports is the one the alert rules select."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import metrics
from pipelines.streaming import freshness

pytestmark = pytest.mark.unit
WATERMARK_S = 5.0


def test_a_live_window_counts_from_its_end_plus_the_watermark_delay() -> None:
    now = 1_800_000_000.0
    # Ended 6.5 s ago: closed 1.5 s ago (5 s watermark); the job emitted it 1.2 s after its close.
    seconds, live = freshness.freshness_s(np.array([now - 6.5]), np.array([now - 0.3]), now, WATERMARK_S)
    assert live.tolist() == [True]
    assert seconds.tolist() == pytest.approx([1.5])


def test_a_replayed_window_counts_from_its_emission_not_its_event_time() -> None:
    now = 1_800_000_000.0
    ends = np.array([now - 3 * 3600, now - 6.5, now - 6.5])
    # A backlog's window emitted 0.4 s ago; a live one the job emitted just past the bound; one with no timestamp.
    emitted = np.array([now - 0.4, now - 1.5 + freshness.LIVE_WITHIN_S + 1, np.nan])
    seconds, live = freshness.freshness_s(ends, emitted, now, WATERMARK_S)
    assert live.tolist() == [False, False, True]
    assert seconds[0] == pytest.approx(0.4)
    assert seconds[2] == pytest.approx(1.5)  # no emission time: its close is the only one known


def test_monitoring_selects_the_series_the_pusher_exports() -> None:
    assert metrics.FRESHNESS.name == freshness.NAME
    assert metrics.FRESHNESS.labels == (metrics.COMPONENT, metrics.GROUP) == freshness.LABELS
    assert metrics.FRESHNESS.buckets == freshness.BUCKETS
    assert 1.0 in freshness.BUCKETS  # the goal is a bucket edge: p99 over 1 s is read, not interpolated
