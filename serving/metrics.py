"""Prometheus metrics of the model server, per component and registry version: what the canary analysis
compares between stable and canary (in the cluster through Prometheus, locally from each server's /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
ESTIMATE_BUCKETS = (0.0, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597)
LABELS = ("component", "version")

REQUESTS = Counter("mlstack_requests", "Prediction requests", LABELS)
ERRORS = Counter("mlstack_request_errors", "Failed prediction requests", (*LABELS, "kind"))
LATENCY = Histogram(
    "mlstack_request_latency_seconds", "Feature lookup + model, per request", LABELS, buckets=LATENCY_BUCKETS
)
PROBABILITIES = Histogram(
    "mlstack_prediction_probability", "Predicted probabilities (classifiers)", LABELS, buckets=PROBABILITY_BUCKETS
)
ESTIMATES = Histogram("mlstack_prediction_estimate", "Predicted values (regressors)", LABELS, buckets=ESTIMATE_BUCKETS)
