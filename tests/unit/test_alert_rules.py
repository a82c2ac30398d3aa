"""The alert rules, checked and run by Prometheus' own promtool: ``promtool check rules`` on the shipped file, and
``promtool test rules`` feeding series that must fire and series that must not (drift shorter than its ``for``, a
shortfall over too few labels, an error spike below the minimum request rate, ...)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import serving.metrics
from monitoring import alert_rules
from monitoring import metrics as m

pytestmark = pytest.mark.unit

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found: apt-get install prometheus")

FRAUD = {"component": "fraud", "version": "3"}
RULES = alert_rules.rules(serving.metrics)
DESCRIPTIONS = {rule["alert"]: rule["annotations"]["description"] for g in RULES["groups"] for rule in g["rules"]}


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


def _fires(alert: str, at: str, *expected: tuple[dict[str, str], str]) -> dict[str, Any]:
    """``alert`` at ``at`` is exactly the ``expected`` (labels, summary) pairs: any other series must stay quiet."""
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": DESCRIPTIONS[alert]}}
            for labels, summary in expected
        ],
    }


def _labels(reason: str, severity: str, **labels: str) -> dict[str, str]:
    return {**labels, "reason": reason, "severity": severity}


def _promtool(*argv: str, cwd: Path) -> str:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *argv], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _run_tests(tmp_path: Path, series: list[dict[str, str]], *checks: dict[str, Any]) -> None:
    """``promtool test rules`` on the shipped rules: ``series`` sampled each minute, then each check."""
    (tmp_path / "rules.yml").write_text(alert_rules.rule_file(serving.metrics))
    test = {"interval": "1m", "input_series": series, "alert_rule_test": list(checks)}
    (tmp_path / "tests.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [test]})
    )
    _promtool("test", "rules", "tests.yml", cwd=tmp_path)


@needs_promtool
def test_the_shipped_rule_file_passes_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(alert_rules.rule_file(serving.metrics))
    out = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    alerts = sum(len(group["rules"]) for group in RULES["groups"])
    assert f"SUCCESS: {alerts} rules found" in out


def test_every_alert_has_its_routing_labels_and_selects_only_exported_series() -> None:
    exported = {s.selector for s in m.SERIES} | {
        serving.metrics.REQUESTS_TOTAL,
        serving.metrics.ERRORS_TOTAL,
        serving.metrics.LATENCY_BUCKET,
    }
    for group in RULES["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["reason"] in alert_rules.REASONS, rule["alert"]
            assert rule["labels"]["severity"] in (alert_rules.CRITICAL, alert_rules.WARNING), rule["alert"]
            assert rule["annotations"]["summary"] and rule["for"], rule["alert"]
            names = {word for word in _identifiers(rule["expr"]) if word.startswith("mlstack_")}
            assert names and names <= exported, f"{rule['alert']} selects {sorted(names - exported)}"


def _identifiers(expr: str) -> list[str]:
    import re

    return re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)


@needs_promtool
def test_drift_fires_only_when_psi_and_the_test_agree_for_the_sustained_time(tmp_path: Path) -> None:
    psi, pvalue = m.FEATURE_PSI.name, m.FEATURE_DRIFT_PVALUE.name
    series = [
        _series(psi, "0.35x30", **FRAUD, feature="amount"),  # drifted, significant: fires after 15m
        _series(pvalue, "0.001x30", **FRAUD, feature="amount"),
        _series(psi, "0.35x30", **FRAUD, feature="hour"),  # large PSI, but the test cannot tell (small window)
        _series(pvalue, "0.3x30", **FRAUD, feature="hour"),
        _series(psi, "0.05x14 0.35x15", **FRAUD, feature="channel"),  # drifted for 10 minutes only at 20m
        _series(pvalue, "0.001x30", **FRAUD, feature="channel"),
        _series(m.PREDICTION_PSI.name, "0.5x30", **FRAUD),
        _series(m.PREDICTION_DRIFT_PVALUE.name, "0.0001x30", **FRAUD),
    ]
    drift = _labels("drift", "warning", **FRAUD)
    _run_tests(
        tmp_path,
        series,
        _fires("FeatureDrift", "10m"),
        _fires(
            "FeatureDrift",
            "20m",
            ({**drift, "feature": "amount"}, "fraud v3: feature amount drifted, PSI 0.35"),
        ),
        _fires("PredictionDrift", "20m", (drift, "fraud v3: predictions drifted, PSI 0.50")),
    )


@needs_promtool
def test_a_live_shortfall_alerts_only_beyond_tolerance_and_once_enough_labels_arrived(tmp_path: Path) -> None:
    auc = {"metric": "roc_auc"}
    series = [
        _series(m.METRIC_TOLERANCE.name, "0.01x45", component="fraud", **auc),
        _series(m.METRIC_SHORTFALL.name, "0.08x45", **FRAUD, **auc),  # worse by 0.08, 500 labels: fires
        _series(m.LIVE_METRIC_STDERR.name, "0.01x45", **FRAUD, **auc),
        _series(m.HOLDOUT_METRIC_STDERR.name, "0x45", **FRAUD, **auc),
        _series(m.LABELLED_PREDICTIONS.name, "500x45", **FRAUD, **auc),
        _series(m.METRIC_SHORTFALL.name, "0.08x45", component="fraud", version="4", **auc),  # only 50 labels
        _series(m.LIVE_METRIC_STDERR.name, "0.01x45", component="fraud", version="4", **auc),
        _series(m.HOLDOUT_METRIC_STDERR.name, "0x45", component="fraud", version="4", **auc),
        _series(m.LABELLED_PREDICTIONS.name, "50x45", component="fraud", version="4", **auc),
        _series(m.METRIC_SHORTFALL.name, "0.005x45", component="fraud", version="5", **auc),  # within tolerance
        _series(m.LIVE_METRIC_STDERR.name, "0.001x45", component="fraud", version="5", **auc),
        _series(m.HOLDOUT_METRIC_STDERR.name, "0x45", component="fraud", version="5", **auc),
        _series(m.LABELLED_PREDICTIONS.name, "5000x45", component="fraud", version="5", **auc),
        _series(m.METRIC_SHORTFALL.name, "-0.03x45", component="fraud", version="6", **auc),  # better than holdout
        _series(m.LIVE_METRIC_STDERR.name, "0.001x45", component="fraud", version="6", **auc),
        _series(m.HOLDOUT_METRIC_STDERR.name, "0x45", component="fraud", version="6", **auc),
        _series(m.LABELLED_PREDICTIONS.name, "5000x45", component="fraud", version="6", **auc),
    ]
    _run_tests(
        tmp_path,
        series,
        _fires("LiveMetricBelowHoldout", "20m"),
        _fires(
            "LiveMetricBelowHoldout",
            "40m",
            (
                _labels("performance", "critical", **FRAUD, **auc),
                "fraud v3: live roc_auc is 0.08 worse than its holdout score",
            ),
        ),
    )


@needs_promtool
def test_a_live_shortfall_alerts_only_beyond_its_standard_errors(tmp_path: Path) -> None:
    """The same 0.1 shortfall over 1,000 labels: beyond tolerance + z * stderr with a small stderr; within it with a
    large one (few frauds among the labels), or a small live one beside a large holdout one (a small holdout's
    score is itself noisy: the two combine as sqrt(live^2 + holdout^2)); never without a stderr series (the
    exporter omits it) or with +Inf (too thin to judge)."""
    auc = {"metric": "roc_auc"}
    z = alert_rules.SHIPPED_THRESHOLDS.live_metric_z
    tolerance = 0.02
    small, large = 0.1 / (4 * z), (0.1 - tolerance) / z + 0.005  # 0.1 - z * large < tolerance
    versions = {"3": f"{small}x45", "4": f"{large}x45", "5": None, "6": " ".join(["+Inf"] * 46), "7": f"{small}x45"}
    holdout_stderr = {"7": f"{large}x45"}
    series = [_series(m.METRIC_TOLERANCE.name, f"{tolerance}x45", component="fraud", **auc)]
    for version, stderr in versions.items():
        labels = {"component": "fraud", "version": version, **auc}
        series += [
            _series(m.METRIC_SHORTFALL.name, "0.1x45", **labels),
            _series(m.LABELLED_PREDICTIONS.name, "1000x45", **labels),
        ]
        if stderr is not None:
            series.append(_series(m.LIVE_METRIC_STDERR.name, stderr, **labels))
            series.append(_series(m.HOLDOUT_METRIC_STDERR.name, holdout_stderr.get(version, "0x45"), **labels))
    series.append(  # another component's stderr for v5 does not stand in for fraud's
        _series(m.LIVE_METRIC_STDERR.name, "0.001x45", component="demand", version="5", **auc)
    )
    _run_tests(
        tmp_path,
        series,
        _fires(
            "LiveMetricBelowHoldout",
            "40m",
            (
                _labels("performance", "critical", **FRAUD, **auc),
                "fraud v3: live roc_auc is 0.1 worse than its holdout score",
            ),
        ),
    )


@needs_promtool
def test_data_quality_breaches_alert_and_small_rates_or_windows_do_not(tmp_path: Path) -> None:
    quality = _labels("quality", "warning", **FRAUD)
    few = {"component": "fraud", "version": "4"}  # a canary's handful of rows: every rate is noise
    series = [
        _series(m.WINDOW_ROWS.name, "500x20", **FRAUD),
        _series(m.WINDOW_ROWS.name, "12x20", **few),
        _series(m.NULL_RATE.name, "0.5x20", **few, feature="amount"),
        _series(m.REFERENCE_NULL_RATE.name, "0.01x20", **few, feature="amount"),
        _series(m.OUT_OF_RANGE_RATE.name, "0.5x20", **few, feature="amount"),
        _series(m.REFERENCE_OUT_OF_RANGE_RATE.name, "0x20", **few, feature="amount"),
        _series(m.UNSEEN_CATEGORY_RATE.name, "0.5x20", **few, feature="channel"),
        _series(m.REFERENCE_UNSEEN_CATEGORY_RATE.name, "0x20", **few, feature="channel"),
        _series(m.INCOMPLETE_ROWS.name, "0.5x20", **few, state="absent"),
        _series(m.NULL_RATE.name, "0.2x20", **FRAUD, feature="amount"),  # 19 points above training: fires
        _series(m.REFERENCE_NULL_RATE.name, "0.01x20", **FRAUD, feature="amount"),
        _series(m.NULL_RATE.name, "0.3x20", **FRAUD, feature="hour"),  # as null as in training: quiet
        _series(m.REFERENCE_NULL_RATE.name, "0.28x20", **FRAUD, feature="hour"),
        _series(m.OUT_OF_RANGE_RATE.name, "0.1x20", **FRAUD, feature="amount"),  # 9 points beyond the holdout's
        _series(m.REFERENCE_OUT_OF_RANGE_RATE.name, "0.01x20", **FRAUD, feature="amount"),
        _series(m.OUT_OF_RANGE_RATE.name, "0.01x20", **FRAUD, feature="hour"),
        _series(m.REFERENCE_OUT_OF_RANGE_RATE.name, "0x20", **FRAUD, feature="hour"),
        # A window maximum's heavy tail: often beyond the training range, but as often as the holdout was: quiet.
        _series(m.OUT_OF_RANGE_RATE.name, "0.09x20", **FRAUD, feature="merchant_1h__amount_max"),
        _series(m.REFERENCE_OUT_OF_RANGE_RATE.name, "0.07x20", **FRAUD, feature="merchant_1h__amount_max"),
        _series(m.UNSEEN_CATEGORY_RATE.name, "0.02x20", **FRAUD, feature="channel"),
        _series(m.REFERENCE_UNSEEN_CATEGORY_RATE.name, "0x20", **FRAUD, feature="channel"),
        _series(m.UNSEEN_CATEGORY_RATE.name, "0.3x20", **FRAUD, feature="merchant"),  # 30 points beyond: fires
        _series(m.REFERENCE_UNSEEN_CATEGORY_RATE.name, "0x20", **FRAUD, feature="merchant"),
        _series(m.UNSEEN_CATEGORY_RATE.name, "0.3x20", **FRAUD, feature="city"),  # as new as the holdout's: quiet
        _series(m.REFERENCE_UNSEEN_CATEGORY_RATE.name, "0.28x20", **FRAUD, feature="city"),
        _series(m.INCOMPLETE_ROWS.name, "0.2x20", **FRAUD, state="stale"),
        _series(m.INCOMPLETE_ROWS.name, "0.0x20", **FRAUD, state="absent"),
    ]
    rows = "fraud v3: feature amount: "
    _run_tests(
        tmp_path,
        series,
        _fires(
            "FeatureNullRateHigh",
            "15m",
            ({**quality, "feature": "amount"}, f"{rows}null rate 19% above training's"),
        ),
        _fires(
            "FeatureOutOfRange",
            "15m",
            (
                {**quality, "feature": "amount"},
                f"{rows}9% more rows outside the training range than the holdout had",
            ),
        ),
        _fires(
            "FeatureUnseenCategories",
            "15m",
            (
                {**quality, "feature": "merchant"},
                "fraud v3: feature merchant: 30% more rows hold categories training never saw than the holdout had",
            ),
        ),
        _fires(
            "ServedWithIncompleteFeatures",
            "15m",
            ({**quality, "state": "stale"}, "fraud v3: 20% of rows scored with stale online features"),
        ),
    )


def _histogram(name: str, buckets: dict[str, str], **labels: str) -> list[dict[str, str]]:
    return [_series(name, values, **labels, le=le) for le, values in buckets.items()]


@needs_promtool
def test_freshness_p99_over_one_second_alerts(tmp_path: Path) -> None:
    name = m.FRESHNESS.selector
    slow = {"0.5": "0+0x30", "1": "0+0x30", "2": "0+0x30", "3": "0+60x30", "+Inf": "0+60x30"}
    fast = {"0.5": "0+60x30", "1": "0+60x30", "2": "0+60x30", "3": "0+60x30", "+Inf": "0+60x30"}
    # Three minutes of a replay's last windows, half a minute late, then live ones on time: a one-off catch-up.
    fast_after = "0 0 0 0 60+60x26"
    burst = {"0.5": fast_after, "1": fast_after, "2": fast_after, "3": fast_after, "+Inf": "0 100 200 300 360+60x26"}
    card = {"component": "fraud", "group": "card_activity", "reason": "freshness", "severity": "warning"}
    _run_tests(
        tmp_path,
        _histogram(name, slow, component="fraud", group="card_activity")
        + _histogram(name, fast, component="fraud", group="merchant_activity")
        + _histogram(name, burst, component="fraud", group="catching_up"),
        _fires(
            "FeatureFreshnessSlow",
            "12m",
            (card, "fraud: features of card_activity reach the online store in 2.99 s at p99"),
        ),
        _fires(
            "FeatureFreshnessSlow",
            "25m",
            (
                {
                    "component": "fraud",
                    "group": "card_activity",
                    "reason": "freshness",
                    "severity": "warning",
                },
                "fraud: features of card_activity reach the online store in 2.99 s at p99",
            ),
        ),
    )


@needs_promtool
def test_serving_slos_alert_on_busy_versions_only(tmp_path: Path) -> None:
    s = serving.metrics
    v4, v5 = {"component": "fraud", "version": "4"}, {"component": "fraud", "version": "5"}
    server, bad = {s.KIND: s.SERVER_ERROR}, {s.KIND: s.BAD_REQUEST}
    series = [
        # v3: 10 requests/s, 10% server errors (and callers' bad requests, which are not the service's)
        _series(s.REQUESTS_TOTAL, "0+600x20", **FRAUD),
        _series(s.ERRORS_TOTAL, "0+60x20", **FRAUD, **server),
        _series(s.ERRORS_TOTAL, "0+300x20", **FRAUD, **bad),
        # v4: half its requests fail, but at 0.2 requests/s: too few to judge
        _series(s.REQUESTS_TOTAL, "0+12x20", **v4),
        _series(s.ERRORS_TOTAL, "0+6x20", **v4, **server),
        # v5: busy and healthy, only bad requests
        _series(s.REQUESTS_TOTAL, "0+600x20", **v5),
        _series(s.ERRORS_TOTAL, "0+0x20", **v5, **server),
        _series(s.ERRORS_TOTAL, "0+300x20", **v5, **bad),
    ]
    slow = {"0.01": "0+0x20", "0.1": "0+0x20", "0.3": "0+600x20", "+Inf": "0+600x20"}
    fast = {"0.01": "0+600x20", "0.1": "0+600x20", "0.3": "0+600x20", "+Inf": "0+600x20"}
    quiet = {"0.01": "0+0x20", "0.1": "0+0x20", "0.3": "0+12x20", "+Inf": "0+12x20"}  # slow, but idle
    series += _histogram(s.LATENCY_BUCKET, slow, **FRAUD) + _histogram(s.LATENCY_BUCKET, fast, **v5)
    series += _histogram(s.LATENCY_BUCKET, quiet, **v4)
    labels = _labels("serving", "critical", **FRAUD)
    _run_tests(
        tmp_path,
        series,
        _fires("ServingErrorRateHigh", "3m"),  # not yet sustained for 5m
        _fires("ServingErrorRateHigh", "15m", (labels, "fraud v3: 10% of requests fail with server errors")),
        _fires(
            "ServingLatencyHigh",
            "15m",
            ({**labels, "severity": "warning"}, "fraud v3: p99 latency 0.298 s"),
        ),
    )
