"""The feature pusher's freshness histogram on real engines: after the shared fraud backlog streamed through Kafka,
Flink and Feast (its windows closed by the final watermark), the pusher serves one observation per window result it
wrote online, per group, and embedded mode's Prometheus scrapes them from the target file the pusher's start wrote.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from local.alerting import targets_dir
from local.services import EmbeddedServices
from local.synthetic_stream import Streamed
from monitoring import metrics

pytestmark = pytest.mark.local
SCRAPE_WAIT_S = 120
"""How long Prometheus may take to discover the pusher and scrape it (default 15 s scrape interval)."""


def _histogram(port: int) -> dict[str, dict[str, float]]:
    """Per group: the freshness histogram's count and sum as the pusher's /metrics serves them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != metrics.FRESHNESS.name:
            continue
        for sample in family.samples:
            if sample.name.endswith(("_count", "_sum")):
                assert sample.labels[metrics.COMPONENT] == "fraud"
                found.setdefault(sample.labels[metrics.GROUP], {})[sample.name.rsplit("_", 1)[1]] = sample.value
    return found


def test_pusher_exports_freshness_per_group(embedded: EmbeddedServices, fraud_streamed: Streamed) -> None:
    streaming = fraud_streamed.streaming
    stats = streaming.pusher_stats()
    found = _histogram(streaming.metrics_port())
    groups = [g.name for g in streaming.component.streaming.groups]
    assert sorted(found) == sorted(groups)
    # One observation per window result written online (the stats file is written at the last flush).
    assert sum(h["count"] for h in found.values()) >= stats["rows_online"] > 0
    for group, histogram in found.items():
        assert histogram["count"] > 0, group
        # A replayed backlog's windows are measured from their emission by the job, not from event time, which
        # would make them as old as the backlog (minutes to over an hour): see pipelines.streaming.freshness.
        assert histogram["sum"] / histogram["count"] < 120, (group, histogram)

    # Embedded Prometheus discovers the pusher from its target file and scrapes the same series.
    target = json.loads((targets_dir(embedded.settings, "monitoring") / f"{streaming.pusher_program}.json").read_text())
    assert target[0]["targets"] == [f"127.0.0.1:{streaming.metrics_port()}"]
    query = urllib.parse.urlencode({"query": f'{metrics.FRESHNESS.name}_count{{component="fraud"}}'})
    deadline, series = time.monotonic() + SCRAPE_WAIT_S, list[dict[str, Any]]()
    # Until every group's series is scraped with an observation: a scrape can land before a group's first one.
    while time.monotonic() < deadline and (len(series) < len(groups) or any(s["value"][1] == "0" for s in series)):
        with urllib.request.urlopen(f"{embedded.settings.prometheus_url}/api/v1/query?{query}", timeout=10) as r:
            series = json.load(r)["data"]["result"]
        time.sleep(2)
    assert sorted(s["metric"][metrics.GROUP] for s in series) == sorted(groups)
    assert all(float(s["value"][1]) > 0 for s in series)
