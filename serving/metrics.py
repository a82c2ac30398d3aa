"""Prometheus metrics of the model server, per component and registry version: what the canary analysis
compares between stable and canary, read through Prometheus or from each server's own /metrics.

What a version's predictions feed depends on its task: a binary classifier's probabilities of the positive class
go to a probability histogram, a regressor's estimates to an estimate histogram, and a multiclass classifier's
predicted class (the most probable one, as its response's ``label``) to a counter per class: a histogram of class
indices would put every class but the first few in ``+Inf``, and the canary compares class shares anyway.

This module owns the names: the server exports these objects, and every reader (the PromQL of
``serving.rollout.prometheus``, a scraper of the server's text exposition) selects the series by the constants
below, so a renamed metric or label cannot leave a reader querying a series nobody exports."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
ESTIMATE_BUCKETS = (0.0, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597)

# -- label names and values ----------------------------------------------------------------------------------
COMPONENT, VERSION, KIND, CLASS, REASON = "component", "version", "kind", "class", "reason"
LABELS = (COMPONENT, VERSION)
SERVER_ERROR, BAD_REQUEST = "server", "bad request"
"""Values of ``kind``: the analysis counts server errors only; a bad request (HTTP 4xx) is the caller's."""
QUEUE_FULL, NOT_DELIVERED = "queue full", "not delivered"
"""Values of ``reason`` on dropped inference log records: the server's bounded queue was full, or Kafka did not
take the record (the producer's own buffer full, or delivery failed after its retries)."""
BUCKET_BOUND = "le"
"""The label holding a histogram bucket's upper bound (Prometheus' own name for it)."""

# -- metric names ----------------------------------------------------------------------------------------------
REQUESTS_NAME = "mlstack_requests"
ERRORS_NAME = "mlstack_request_errors"
LATENCY_NAME = "mlstack_request_latency_seconds"
PROBABILITY_NAME = "mlstack_prediction_probability"
ESTIMATE_NAME = "mlstack_prediction_estimate"
PREDICTED_CLASS_NAME = "mlstack_predicted_class"
DEGRADED_NAME = "mlstack_degraded_predictions"
LOG_WRITTEN_NAME = "mlstack_inference_log_written"
LOG_DROPPED_NAME = "mlstack_inference_log_dropped"

# -- series names, as the text format and Prometheus show them (a counter gains ``_total``, a histogram's
# buckets ``_bucket``): what the readers select -----------------------------------------------------------------
REQUESTS_TOTAL = f"{REQUESTS_NAME}_total"
ERRORS_TOTAL = f"{ERRORS_NAME}_total"
LATENCY_BUCKET = f"{LATENCY_NAME}_bucket"
PREDICTION_BUCKETS = (f"{PROBABILITY_NAME}_bucket", f"{ESTIMATE_NAME}_bucket")
"""Binary classifiers export the first, regressors the second: one version has one of them."""
PREDICTED_CLASS_TOTAL = f"{PREDICTED_CLASS_NAME}_total"
"""Multiclass classifiers export this instead, one series per class (label ``class``)."""
DEGRADED_TOTAL = f"{DEGRADED_NAME}_total"
LOG_WRITTEN_TOTAL = f"{LOG_WRITTEN_NAME}_total"
LOG_DROPPED_TOTAL = f"{LOG_DROPPED_NAME}_total"
NOT_COMPARED = (DEGRADED_TOTAL, LOG_WRITTEN_TOTAL, LOG_DROPPED_TOTAL)
"""Series the canary analysis does not compare between versions: degraded answers are the online store's doing and
the inference log's counts Kafka's, not the version's; alerts and dashboards read them."""

# -- the server's metrics --------------------------------------------------------------------------------------
REQUESTS = Counter(REQUESTS_NAME, "Prediction requests", LABELS)
ERRORS = Counter(ERRORS_NAME, "Failed prediction requests", (*LABELS, KIND))
LATENCY = Histogram(LATENCY_NAME, "Feature lookup + model, per request", LABELS, buckets=LATENCY_BUCKETS)
PROBABILITIES = Histogram(
    PROBABILITY_NAME,
    "Predicted probabilities of the positive class (binary classifiers)",
    LABELS,
    buckets=PROBABILITY_BUCKETS,
)
ESTIMATES = Histogram(ESTIMATE_NAME, "Predicted values (regressors)", LABELS, buckets=ESTIMATE_BUCKETS)
PREDICTED_CLASSES = Counter(
    PREDICTED_CLASS_NAME, "Predictions per predicted class (multiclass classifiers)", (*LABELS, CLASS)
)
DEGRADED = Counter(
    DEGRADED_NAME,
    "Requests answered without online features: the store was unreachable or slower than the budget",
    LABELS,
)
LOG_WRITTEN = Counter(LOG_WRITTEN_NAME, "Inference log records Kafka acknowledged (one per scored row)", LABELS)
LOG_DROPPED = Counter(LOG_DROPPED_NAME, "Inference log records dropped, never blocking a request", (*LABELS, REASON))
