"""Reading a model server's own ``/metrics`` into a ``Snapshot`` (embedded mode; the cluster asks Prometheus)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from serving.rollout.analysis import Snapshot


def snapshot_from_text(text: str, component: str, version: str) -> Snapshot:
    snapshot = Snapshot()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("component") != component or labels.get("version") != version:
                continue
            if sample.name == "mlstack_requests_total":
                snapshot.requests += sample.value
            elif sample.name == "mlstack_request_errors_total" and labels.get("kind") == "server":
                snapshot.server_errors += sample.value
            elif sample.name == "mlstack_request_latency_seconds_bucket":
                snapshot.latency[float(labels["le"])] = sample.value
            elif sample.name in ("mlstack_prediction_probability_bucket", "mlstack_prediction_estimate_bucket"):
                snapshot.predictions[float(labels["le"])] = sample.value
    return snapshot


def scrape(url: str, component: str, version: str, timeout_s: float = 5) -> Snapshot:
    """One server's counters; an unreachable server reads as empty (the analysis then waits or fails on it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return snapshot_from_text(response.read().decode(), component, version)
    except OSError:
        return Snapshot()
