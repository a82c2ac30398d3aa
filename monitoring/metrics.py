"""The Prometheus series of production monitoring: what the monitor job and the feature pusher export, what the
alert rules (``monitoring.alert_rules``) and dashboards select.

This module owns the names, as ``serving.metrics`` owns the model server's: exporters build their collectors from
the ``Series`` below (``prometheus_client`` or another client), readers select by the same constants, so a renamed
series or label cannot leave a rule watching a series nobody exports. Names only: no collector is created on import,
because the exporters run in different processes (a Flink job's Python worker, the Feast pusher) with their own
registries.

Labels: every model series carries ``component`` and ``version`` (the registry version that answered), so a canary's
numbers never mix with its stable's; per-feature series add ``feature``; the live metric adds ``metric`` (the
component's ``Metric.name``, e.g. ``roc_auc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contract import live_evaluation
from contract.model import Metric
from pipelines.streaming import freshness

# -- label names ------------------------------------------------------------------------------------------------
COMPONENT, VERSION, FEATURE, METRIC, STATE, GROUP = "component", "version", "feature", "metric", "state", "group"
TOPIC = "topic"
MODEL = (COMPONENT, VERSION)
"""The labels of every per-version series (the same names as ``serving.metrics.LABELS``)."""
STALE, ABSENT = "stale", "absent"
"""Values of ``state`` on ``INCOMPLETE_ROWS``, as the inference log tells them: ``absent``, the row was served
degraded (the online store unreadable within the server's budget: no feature read at all); ``stale``, not degraded
but every feature null (nothing current in the store for its entities: past the views' TTL, or never written; the
log cannot tell the two apart). (Not ``reason``: alerts carry that label for their family, and a rule's label would
overwrite the series'.)"""

FRESHNESS_BUCKETS = freshness.BUCKETS
"""Seconds from window close to the online store; dense around the 1 s goal so its p99 is read, not guessed."""

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Series:
    """One exported metric: its name, type, help text and label names."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    @property
    def selector(self) -> str:
        """The series name as Prometheus stores it: a counter gains ``_total``, a histogram's buckets ``_bucket``
        (what a rule selects; a histogram's ``_count`` and ``_sum`` are ``name + "_count"`` and ``"_sum"``)."""
        return {"gauge": self.name, "counter": f"{self.name}_total", "histogram": f"{self.name}_bucket"}[self.kind]


# -- model performance, from predictions joined with their delayed labels (the monitor job) ------------------------
LIVE_METRIC = Series(
    live_evaluation.LIVE_METRIC,
    "gauge",
    "The component's own metric on the labelled predictions of the sliding window",
    (*MODEL, METRIC),
)
LIVE_METRIC_STDERR = Series(
    live_evaluation.LIVE_METRIC_STDERR,
    "gauge",
    "The live metric's standard error (bootstrap over the window's labelled predictions; +Inf when too thin)",
    (*MODEL, METRIC),
)
LABELLED_PREDICTIONS = Series(
    live_evaluation.LABELLED_PREDICTIONS,
    "gauge",
    "Predictions in the sliding window whose label has arrived: the count the live metric rests on",
    (*MODEL, METRIC),
)
HOLDOUT_METRIC = Series(
    "mlstack_monitor_holdout_metric",
    "gauge",
    "The version's score on its training run's holdout (registry), the live metric's reference",
    (*MODEL, METRIC),
)
HOLDOUT_METRIC_STDERR = Series(
    "mlstack_monitor_holdout_metric_stderr",
    "gauge",
    "The holdout score's own standard error (bootstrap over the holdout at registration; 0 for a version "
    "registered before it was kept): a small holdout's score is itself noisy",
    (*MODEL, METRIC),
)
METRIC_TOLERANCE = Series(
    "mlstack_monitor_metric_tolerance",
    "gauge",
    "The component's tolerance (Metric.tolerance): a live shortfall up to this much is noise",
    (COMPONENT, METRIC),
)
METRIC_SHORTFALL = Series(
    "mlstack_monitor_metric_shortfall",
    "gauge",
    "How much worse the live metric is than the holdout score, positive when worse, whatever the direction",
    (*MODEL, METRIC),
)
MEAN_PREDICTED = Series(
    "mlstack_monitor_mean_predicted",
    "gauge",
    "Calibration: mean predicted probability (or estimate) over the labelled predictions of the window",
    MODEL,
)
MEAN_OBSERVED = Series(
    "mlstack_monitor_mean_observed",
    "gauge",
    "Calibration: observed positive rate (or mean label) over the labelled predictions of the window",
    MODEL,
)

# -- drift against the serving version's training profile -----------------------------------------------------
WINDOW_ROWS = Series(
    "mlstack_monitor_window_rows",
    "gauge",
    "Served rows in the sliding window: the sample size drift and quality rates rest on",
    MODEL,
)
FEATURE_PSI = Series(
    "mlstack_monitor_feature_psi",
    "gauge",
    "Population stability index of a served feature against the training profile's bins",
    (*MODEL, FEATURE),
)
FEATURE_DRIFT_PVALUE = Series(
    "mlstack_monitor_feature_drift_pvalue",
    "gauge",
    "p-value of a two-sample test (window vs training profile) for a served feature; accounts for window size",
    (*MODEL, FEATURE),
)
PREDICTION_PSI = Series(
    "mlstack_monitor_prediction_psi",
    "gauge",
    "Population stability index of the predictions against the holdout's prediction distribution",
    MODEL,
)
PREDICTION_DRIFT_PVALUE = Series(
    "mlstack_monitor_prediction_drift_pvalue",
    "gauge",
    "p-value of a two-sample test (window vs holdout predictions); accounts for window size",
    MODEL,
)

# -- data quality -----------------------------------------------------------------------------------------------
NULL_RATE = Series(
    "mlstack_monitor_null_rate", "gauge", "Share of served rows whose feature is missing", (*MODEL, FEATURE)
)
REFERENCE_NULL_RATE = Series(
    "mlstack_monitor_reference_null_rate",
    "gauge",
    "Share of training rows whose feature was missing (the profile's null rate)",
    (*MODEL, FEATURE),
)
OUT_OF_RANGE_RATE = Series(
    "mlstack_monitor_out_of_range_rate",
    "gauge",
    "Share of served rows whose numeric feature lies outside the training profile's range",
    (*MODEL, FEATURE),
)
REFERENCE_OUT_OF_RANGE_RATE = Series(
    "mlstack_monitor_reference_out_of_range_rate",
    "gauge",
    "Share of the holdout's values of a numeric feature outside the training range (the profile's)",
    (*MODEL, FEATURE),
)
UNSEEN_CATEGORY_RATE = Series(
    "mlstack_monitor_unseen_category_rate",
    "gauge",
    "Share of served rows whose categorical feature holds a category training never saw",
    (*MODEL, FEATURE),
)
REFERENCE_UNSEEN_CATEGORY_RATE = Series(
    "mlstack_monitor_reference_unseen_category_rate",
    "gauge",
    "Share of the holdout's values of a categorical feature in categories training never saw (the profile's)",
    (*MODEL, FEATURE),
)
INCOMPLETE_ROWS = Series(
    "mlstack_monitor_incomplete_rows_rate",
    "gauge",
    "Share of served rows scored with stale or absent online features (label state: stale | absent)",
    (*MODEL, STATE),
)

# -- the exporter's own reading of the topics ---------------------------------------------------------------------
RECORDS_READ = Series(
    "mlstack_monitor_records",
    "counter",
    "Records the monitor exporter read, by topic (<component>.predictions, <component>.scored)",
    (COMPONENT, TOPIC),
)
MALFORMED_RECORDS = Series(
    "mlstack_monitor_malformed_records",
    "counter",
    "Records the monitor exporter skipped because they do not fit the topic's format (its log says why)",
    (COMPONENT, TOPIC),
)

# -- freshness (the feature pusher: one observation per window result it writes online) ----------------------
# Named in pipelines.streaming.freshness, where the pusher (which may not import monitoring) takes it from.
FRESHNESS = Series(freshness.NAME, "histogram", freshness.HELP, freshness.LABELS, FRESHNESS_BUCKETS)


# -- the retraining trigger (monitoring.retrain_trigger) ---------------------------------------------------------
ACTION, CAUSE, OUTCOME = "action", "cause", "outcome"
RETRAIN_DECISIONS = Series(
    "mlstack_retrain_decisions",
    "counter",
    "The retraining trigger's decisions: started, or skipped and why (duplicate, busy, cooldown, not retrainable)",
    (COMPONENT, ACTION, CAUSE),
)
RETRAIN_RUNNING = Series(
    "mlstack_retrain_running",
    "gauge",
    "1 while the component's retraining run (training, then its canary) is under way",
    (COMPONENT,),
)
RETRAIN_RUNS = Series(
    "mlstack_retrain_runs",
    "counter",
    "Retraining runs ended, by outcome: promoted, rolled back, not registered, no canary, failed",
    (COMPONENT, OUTCOME),
)
TRIGGER_SERIES = (RETRAIN_DECISIONS, RETRAIN_RUNNING, RETRAIN_RUNS)
"""What the trigger exports (its own process and registry; not in ``SERIES``, which the monitor's exporter serves)."""


SERIES = (
    LIVE_METRIC,
    LIVE_METRIC_STDERR,
    LABELLED_PREDICTIONS,
    HOLDOUT_METRIC,
    HOLDOUT_METRIC_STDERR,
    METRIC_TOLERANCE,
    METRIC_SHORTFALL,
    MEAN_PREDICTED,
    MEAN_OBSERVED,
    WINDOW_ROWS,
    FEATURE_PSI,
    FEATURE_DRIFT_PVALUE,
    PREDICTION_PSI,
    PREDICTION_DRIFT_PVALUE,
    NULL_RATE,
    REFERENCE_NULL_RATE,
    OUT_OF_RANGE_RATE,
    REFERENCE_OUT_OF_RANGE_RATE,
    UNSEEN_CATEGORY_RATE,
    REFERENCE_UNSEEN_CATEGORY_RATE,
    INCOMPLETE_ROWS,
    RECORDS_READ,
    MALFORMED_RECORDS,
    FRESHNESS,
)
"""Every series monitoring exports, for exporters that register them all and for the tests."""


def shortfall(metric: Metric, live: float, holdout: float) -> float:
    """How much worse ``live`` is than ``holdout``, positive when worse, for a metric of either direction: the
    value of ``METRIC_SHORTFALL``, so one alert rule (shortfall > tolerance) serves ROC AUC and MAE alike."""
    return metric.gain(holdout, live)
