"""The alert rules of both modes, as code: ``rule_file`` renders the Prometheus rule file that the embedded
Prometheus loads and the cluster's Prometheus chart mounts (``serverFiles."alerting_rules.yml"``).

Every alert carries the labels a receiver routes on: ``severity`` (``critical`` pages, ``warning`` tickets),
``reason`` (the family: drift | performance | quality | freshness | serving; issue 19's retraining trigger acts on
drift and performance), ``component`` and, where the series has one, ``version``. Its ``summary`` states the value.

The serving alerts select the model server's series, whose names ``serving.metrics`` owns; monitoring may not import
serving's modules (pyproject's import contracts), so ``rule_file`` takes them as an argument shaped by
``ServingSeries``, a protocol the module ``serving.metrics`` itself satisfies: the callers, in layers that may import
both (``local``, ``infra``, the tests), pass ``serving.metrics``, and mypy checks that it has every name used here.
Nothing is copied, so a renamed server metric breaks the type check rather than silently muting an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from monitoring import metrics as m

SEVERITY, REASON = "severity", "reason"
CRITICAL, WARNING = "critical", "warning"
DRIFT, PERFORMANCE, QUALITY, FRESHNESS, SERVING = "drift", "performance", "quality", "freshness", "serving"
REASONS = (DRIFT, PERFORMANCE, QUALITY, FRESHNESS, SERVING)


class ServingSeries(Protocol):
    """The model server's names these rules select; the module ``serving.metrics`` is one."""

    REQUESTS_TOTAL: str
    ERRORS_TOTAL: str
    LATENCY_BUCKET: str
    KIND: str
    SERVER_ERROR: str
    BUCKET_BOUND: str


@dataclass(frozen=True)
class Thresholds:
    """Where each alert fires. The defaults are the shipped ones."""

    drift_psi: float = 0.2
    """PSI above 0.2 is the usual 'significant shift' line (0.1-0.2 'moderate')."""
    drift_pvalue: float = 0.01
    """And the window's own test must reject 'same distribution' at this level: PSI alone over a small window is
    noise, a test alone over a large window flags shifts too small to matter; drift needs both."""
    min_labels: float = 200
    """Labelled predictions a live metric needs before it is compared with the holdout (fewer: no alert)."""
    live_metric_z: float = 2.0
    """Standard errors of the shortfall by which it must exceed the tolerance: shortfall - z * stderr > tolerance,
    one-sided, the stderr combining the live metric's (its bootstrap, ``LIVE_METRIC_STDERR``) and the holdout
    score's (registration's bootstrap, ``HOLDOUT_METRIC_STDERR``) as independent: sqrt(live^2 + holdout^2). The
    holdout's was added when a control run's first model, registered on a holdout of 941 rows (~30 frauds, its
    score +- 0.02-0.03), alerted 0.05 under it in a world without change. Fraud's 200 labels hold ~6 frauds, a live
    ROC AUC stderr of 0.03-0.07, and the bare shortfall > tolerance fired on a stationary stream by chance.
    Measured (``benchmarks/live_metric_alarms.py``, fraud's champion, three worlds, 100-150 windows per cell), in a
    single window of 200 / 400 / 800 labels: stationary, the bare rule fired in 25-34% / 17-41% / 10-47% of windows,
    with the live stderr alone at z = 2 in 0% / 0% / 0-0.7% (z = 1: up to 10%); after a regime change (ROC AUC
    0.90-0.95 -> 0.77-0.84) it catches 24-40% / 52-75% / 85-97% (the bare rule 93-99% / 98-100% / 100%). At 200
    labels the stderr is half the change's shortfall: no z keeps false alarms near 1% and catches nearly every
    window there (z = 1.64: 0-1.3% false, 42-60% / 65-91% / 92-99% caught); a degraded model is caught as its
    window's labels accumulate. Those figures predate the holdout's stderr, which only raises the bar (the
    benchmark prints both)."""
    null_rate_increase: float = 0.05
    """A feature's null rate above its training null rate by more than this."""
    min_window_rows: float = 100
    """Served rows a version's window needs before its quality rates are judged: one null in a canary's three rows
    is not a 33% null rate worth a ticket. (Drift needs no such floor: its test's p-value accounts for the size.)"""
    out_of_range_rate: float = 0.05
    """Served values outside the training range beyond the holdout's own share of them (a window maximum of a heavy
    tail exceeds the training one now and then by nature: a control run's fraud one-hour maxima did for 5.6% of
    rows against a bare 5%)."""
    unseen_category_rate: float = 0.05
    """Served values in categories training never saw, beyond the holdout's own share."""
    incomplete_rows_rate: float = 0.05
    """Rows scored with stale or absent online features."""
    freshness_p99_s: float = 1.0
    """The streaming goal: features readable within 1 s of their window's close (p99)."""
    error_ratio: float = 0.01
    """Server errors (5xx) per request; callers' bad requests (4xx) are not the service's errors."""
    latency_p99_s: float = 0.1
    """Ten times the benchmark's p99 goal (10 ms): a breach is a service in trouble, not a noisy minute."""
    min_request_rate: float = 0.5
    """Requests/s below which a version's error ratio and p99 are too few requests to judge."""


@dataclass(frozen=True)
class Timing:
    """Windows and sustain times (Prometheus durations). The defaults are the shipped ones; tests shorten them."""

    window: str = "5m"
    """Range of the serving rates and quantiles."""
    freshness_window: str = "5m"
    """Range of the freshness quantile: half of ``freshness_for``, so that only slowness that lasts fires. A
    one-off catch-up (a replayed backlog's last windows reach the store half a minute after their close, then live
    ones in 0.3-0.75 s) keeps the p99 up for one range; with the range as long as the sustain time, such a minute
    fired the alert ten minutes later in a world without change."""
    drift_for: str = "15m"
    performance_for: str = "30m"
    quality_for: str = "10m"
    freshness_for: str = "10m"
    serving_for: str = "5m"
    interval: str = ""
    """Evaluation interval of every group; empty: Prometheus' global ``evaluation_interval``."""


SHIPPED_TIMING = Timing()
SHIPPED_THRESHOLDS = Thresholds()


def _model(value: str) -> str:
    return "{{ $labels.component }} v{{ $labels.version }}: " + value


def _alert(
    name: str, expr: str, sustain: str, severity: str, reason: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": " ".join(expr.split()),
        "for": sustain,
        "labels": {SEVERITY: severity, REASON: reason},
        "annotations": {"summary": summary, "description": description},
    }


def _drift(t: Thresholds, timing: Timing) -> list[dict[str, Any]]:
    on_feature = f"on({m.COMPONENT}, {m.VERSION}, {m.FEATURE})"
    return [
        _alert(
            "FeatureDrift",
            f"{m.FEATURE_PSI.selector} > {t.drift_psi}"
            f" and {on_feature} {m.FEATURE_DRIFT_PVALUE.selector} < {t.drift_pvalue}",
            timing.drift_for,
            WARNING,
            DRIFT,
            _model('feature {{ $labels.feature }} drifted, PSI {{ $value | printf "%.2f" }}'),
            f"PSI above {t.drift_psi} against the version's training profile, and the window's test rejects the "
            f"training distribution at p < {t.drift_pvalue}, for {timing.drift_for}.",
        ),
        _alert(
            "PredictionDrift",
            f"{m.PREDICTION_PSI.selector} > {t.drift_psi}"
            f" and on({m.COMPONENT}, {m.VERSION}) {m.PREDICTION_DRIFT_PVALUE.selector} < {t.drift_pvalue}",
            timing.drift_for,
            WARNING,
            DRIFT,
            _model('predictions drifted, PSI {{ $value | printf "%.2f" }}'),
            f"PSI above {t.drift_psi} against the holdout's predictions, and the window's test rejects them at "
            f"p < {t.drift_pvalue}, for {timing.drift_for}.",
        ),
    ]


def _performance(t: Thresholds, timing: Timing) -> list[dict[str, Any]]:
    keys = f"{m.COMPONENT}, {m.VERSION}, {m.METRIC}"
    # shortfall > tolerance + z * stderr, the stderr of the difference of two independent estimates, sqrt(live^2 +
    # holdout^2): the comparison keeps the shortfall as the value the summary states. The tolerance has no version
    # label (group_left adds it to each version's stderr); a version without a stderr series (the exporter omits
    # them when there is no live metric or holdout score) matches nothing, and +Inf (too thin) never passes.
    stderr = f"({m.LIVE_METRIC_STDERR.selector} ^ 2 + on({keys}) {m.HOLDOUT_METRIC_STDERR.selector} ^ 2) ^ 0.5"
    bar = f"{t.live_metric_z:g} * {stderr} + on({m.COMPONENT}, {m.METRIC}) group_left() " + m.METRIC_TOLERANCE.selector
    expr = (
        f"{m.METRIC_SHORTFALL.selector} > on({keys}) ({bar})"
        f" and on({keys}) {m.LABELLED_PREDICTIONS.selector} >= {t.min_labels:g}"
    )
    return [
        _alert(
            "LiveMetricBelowHoldout",
            expr,
            timing.performance_for,
            CRITICAL,
            PERFORMANCE,
            _model('live {{ $labels.metric }} is {{ $value | printf "%.3g" }} worse than its holdout score'),
            f"The shortfall exceeds the component's tolerance by more than {t.live_metric_z:g} standard errors of "
            f"the difference (shortfall - {t.live_metric_z:g} * sqrt(live stderr^2 + holdout stderr^2) > "
            f"tolerance, one-sided: the window's and the holdout's sampling noise alone do not alert), over at "
            f"least {t.min_labels:g} labelled predictions, for {timing.performance_for}.",
        )
    ]


def _quality(t: Thresholds, timing: Timing) -> list[dict[str, Any]]:
    on_feature = f"on({m.COMPONENT}, {m.VERSION}, {m.FEATURE})"
    enough = f" and on({m.COMPONENT}, {m.VERSION}) {m.WINDOW_ROWS.selector} >= {t.min_window_rows:g}"
    over = f", in a window of at least {t.min_window_rows:g} rows"
    feature = "feature {{ $labels.feature }}: "
    share = "{{ $value | humanizePercentage }}"
    rules = [
        _alert(
            "FeatureNullRateHigh",
            f"{m.NULL_RATE.selector} - {on_feature} {m.REFERENCE_NULL_RATE.selector} > {t.null_rate_increase}" + enough,
            timing.quality_for,
            WARNING,
            QUALITY,
            _model(f"{feature}null rate {share} above training's"),
            f"More than {t.null_rate_increase:.0%} more served rows miss this feature than training rows did{over}.",
        ),
        _alert(
            "FeatureOutOfRange",
            f"{m.OUT_OF_RANGE_RATE.selector} - {on_feature} {m.REFERENCE_OUT_OF_RANGE_RATE.selector} "
            f"> {t.out_of_range_rate}" + enough,
            timing.quality_for,
            WARNING,
            QUALITY,
            _model(f"{feature}{share} more rows outside the training range than the holdout had"),
            f"More than {t.out_of_range_rate:.0%} more served rows lie outside the range training saw than holdout "
            f"rows did{over}.",
        ),
        _alert(
            "FeatureUnseenCategories",
            f"{m.UNSEEN_CATEGORY_RATE.selector} - {on_feature} {m.REFERENCE_UNSEEN_CATEGORY_RATE.selector} "
            f"> {t.unseen_category_rate}" + enough,
            timing.quality_for,
            WARNING,
            QUALITY,
            _model(f"{feature}{share} more rows hold categories training never saw than the holdout had"),
            f"More than {t.unseen_category_rate:.0%} more served rows hold unseen categories than holdout rows "
            f"did{over}.",
        ),
        _alert(
            "ServedWithIncompleteFeatures",
            f"{m.INCOMPLETE_ROWS.selector} > {t.incomplete_rows_rate}" + enough,
            timing.quality_for,
            WARNING,
            QUALITY,
            _model(f"{share} of rows scored with {{{{ $labels.state }}}} online features"),
            f"More than {t.incomplete_rows_rate:.0%} of served rows had stale or absent features in the online "
            f"store{over}.",
        ),
    ]
    return rules


def _freshness(t: Thresholds, timing: Timing) -> list[dict[str, Any]]:
    by = f"{m.COMPONENT}, {m.GROUP}"
    expr = (
        f"histogram_quantile(0.99, sum by ({by}, le) (rate({m.FRESHNESS.selector}[{timing.freshness_window}])))"
        f" > {t.freshness_p99_s}"
    )
    return [
        _alert(
            "FeatureFreshnessSlow",
            expr,
            timing.freshness_for,
            WARNING,
            FRESHNESS,
            "{{ $labels.component }}: features of {{ $labels.group }} reach the online store in "
            '{{ $value | printf "%.2f" }} s at p99',
            f"p99 of window close -> online store over {timing.freshness_window} is above {t.freshness_p99_s:g} s.",
        )
    ]


def _serving(serving: ServingSeries, t: Thresholds, timing: Timing) -> list[dict[str, Any]]:
    by, window = f"{m.COMPONENT}, {m.VERSION}", timing.window
    requests = f"sum by ({by}) (rate({serving.REQUESTS_TOTAL}[{window}]))"
    busy = f"on({by}) {requests} >= {t.min_request_rate}"
    errors = f'sum by ({by}) (rate({serving.ERRORS_TOTAL}{{{serving.KIND}="{serving.SERVER_ERROR}"}}[{window}]))'
    latency = (
        f"histogram_quantile(0.99, sum by ({by}, {serving.BUCKET_BOUND}) (rate({serving.LATENCY_BUCKET}[{window}])))"
    )
    return [
        _alert(
            "ServingErrorRateHigh",
            f"({errors} / {requests}) > {t.error_ratio} and {busy}",
            timing.serving_for,
            CRITICAL,
            SERVING,
            _model("{{ $value | humanizePercentage }} of requests fail with server errors"),
            f"Server errors above {t.error_ratio:.0%} of requests over {window} (at least {t.min_request_rate:g} "
            f"requests/s), for {timing.serving_for}.",
        ),
        _alert(
            "ServingLatencyHigh",
            f"{latency} > {t.latency_p99_s} and {busy}",
            timing.serving_for,
            WARNING,
            SERVING,
            _model('p99 latency {{ $value | printf "%.3f" }} s'),
            f"p99 of feature lookup + model above {t.latency_p99_s:g} s over {window} (at least "
            f"{t.min_request_rate:g} requests/s), for {timing.serving_for}.",
        ),
    ]


def rules(
    serving: ServingSeries, thresholds: Thresholds = SHIPPED_THRESHOLDS, timing: Timing = SHIPPED_TIMING
) -> dict[str, Any]:
    """The rule file's content: one group per reason family."""
    groups = {
        DRIFT: _drift(thresholds, timing),
        PERFORMANCE: _performance(thresholds, timing),
        QUALITY: _quality(thresholds, timing),
        FRESHNESS: _freshness(thresholds, timing),
        SERVING: _serving(serving, thresholds, timing),
    }
    rendered = []
    for reason, alerts in groups.items():
        group: dict[str, Any] = {"name": f"mlstack-{reason}", "rules": alerts}
        if timing.interval:
            group["interval"] = timing.interval
        rendered.append(group)
    return {"groups": rendered}


def rule_file(
    serving: ServingSeries, thresholds: Thresholds = SHIPPED_THRESHOLDS, timing: Timing = SHIPPED_TIMING
) -> str:
    """The rule file as YAML (what ``promtool check rules`` checks and both Prometheuses load)."""
    header = "# Generated by monitoring/alert_rules.py: edit the code, not this file.\n"
    return header + str(yaml.safe_dump(rules(serving, thresholds, timing), sort_keys=False, width=200))
