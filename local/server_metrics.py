"""Reading a model server's own ``/metrics`` into a ``Snapshot`` (embedded mode; the cluster asks Prometheus)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from serving import metrics
from serving.rollout.analysis import Snapshot


def snapshot_from_text(text: str, component: str, version: str) -> Snapshot:
    """The counters of one version in a server's Prometheus text exposition (series named by ``serving.metrics``)."""
    snapshot = Snapshot()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get(metrics.COMPONENT) != component or labels.get(metrics.VERSION) != version:
                continue
            if sample.name == metrics.REQUESTS_TOTAL:
                snapshot.requests += sample.value
            elif sample.name == metrics.ERRORS_TOTAL and labels.get(metrics.KIND) == metrics.SERVER_ERROR:
                snapshot.server_errors += sample.value
            elif sample.name == metrics.LATENCY_BUCKET:
                snapshot.latency[float(labels[metrics.BUCKET_BOUND])] = sample.value
            elif sample.name in metrics.PREDICTION_BUCKETS:
                snapshot.predictions[float(labels[metrics.BUCKET_BOUND])] = sample.value
            elif sample.name == metrics.PREDICTED_CLASS_TOTAL:
                name = labels[metrics.CLASS]
                snapshot.classes[name] = snapshot.classes.get(name, 0.0) + sample.value
    return snapshot


def scrape(url: str, component: str, version: str, timeout_s: float = 5) -> Snapshot:
    """One server's counters; an unreachable server reads as empty (the analysis then waits or fails on it)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return snapshot_from_text(response.read().decode(), component, version)
    except OSError:
        return Snapshot()
