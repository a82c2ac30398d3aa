"""The demo's monitoring: live events scored as they happen from the moment a model serves, and at the end the
model panel: each version's live metric from its labelled predictions (the monitor job joins the inference log with
the labels that come back), its holdout score beside it, and the features drifting most from its training profile,
in the summary and drawn from the embedded Prometheus as the model dashboard's PNG."""

from __future__ import annotations

import math
import time
import urllib.request
from typing import Any

from cli.demo_state import Demo
from local.dashboard_report import Prometheus, evaluate_range, plot_report
from local.errors import EmbeddedError
from local.live_scoring import LiveScorer
from local.model_serving import EmbeddedServing
from local.streaming import EmbeddedStreaming
from local.synthetic_stream import LiveEvents
from monitoring import metrics as m
from monitoring.alert_rules import SHIPPED_THRESHOLDS

POLL_S = 5.0


def score_live(demo: Demo, live: LiveEvents, serving: EmbeddedServing) -> LiveScorer:
    """From now on every live event a prediction is asked for is scored when it happens."""
    name = demo.component.name
    scorer = LiveScorer(demo.component, f"{serving.endpoint}/v1/models/{name}:predict", headers=demo.headers).start()
    live.listeners.append(scorer)
    feedback = demo.component.streaming.feedback
    later = f" its {feedback.kind!r} label comes up to {feedback.max_delay_s}s later," if feedback else ""
    demo.indent(f"each live event is now scored as it happens;{later} the monitor joins the two")
    return scorer


def exporter_figures(url: str, component: str) -> dict[str, dict[str, Any]]:
    """Per version, from the exporter's /metrics: the live metric and its count, the holdout score, and every
    feature's PSI and drift p-value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    versions: dict[str, dict[str, Any]] = {}
    wanted = {
        m.LIVE_METRIC.name: "live",
        m.LABELLED_PREDICTIONS.name: "labelled",
        m.HOLDOUT_METRIC.name: "holdout",
        m.WINDOW_ROWS.name: "rows",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get(m.COMPONENT) != component or m.VERSION not in labels:
                continue
            figures = versions.setdefault(labels[m.VERSION], {"psi": {}, "pvalue": {}})
            if sample.name in wanted:
                figures[wanted[sample.name]] = sample.value
                if m.METRIC in labels:
                    figures["metric"] = labels[m.METRIC]
            elif sample.name == m.FEATURE_PSI.name:
                figures["psi"][labels[m.FEATURE]] = sample.value
            elif sample.name == m.FEATURE_DRIFT_PVALUE.name:
                figures["pvalue"][labels[m.FEATURE]] = sample.value
    return versions


def _wait_for_live_metric(demo: Demo, url: str, timeout_s: float) -> dict[str, dict[str, Any]]:
    """The exporter's figures once a version has a live metric, or what there is after ``timeout_s``."""
    began, figures = time.monotonic(), {}
    while True:
        try:
            figures = exporter_figures(url, demo.component.name)
        except OSError as error:
            demo.indent(f"monitor exporter not answering yet ({error})")
        if any("live" in f for f in figures.values()) or time.monotonic() - began > timeout_s:
            return figures
        labelled = ", ".join(f"v{v} {f.get('labelled', 0):.0f}" for v, f in sorted(figures.items())) or "none yet"
        demo.indent(f"waiting for labels to come back (labelled predictions per version: {labelled})")
        time.sleep(POLL_S)


def model_panel(demo: Demo, live: LiveEvents, scorer: LiveScorer, streaming: EmbeddedStreaming) -> None:
    """Waits (bounded) for the monitor's first live metric while live events still flow, then stops them and
    puts the model panel in the summary and the report."""
    result, name = demo.result, demo.component.name
    with demo.timed("monitoring"):
        demo.step(9, "the monitor: live metric per version from predictions joined with their labels, drift")
        monitor = streaming.monitor
        if monitor is None:
            demo.indent(f"{name} declares no labels that come back (StreamingSpec.feedback): nothing to join")
            _stop_live(demo, live, scorer)
            return
        url = f"http://127.0.0.1:{monitor.metrics_port()}/metrics"
        figures = _wait_for_live_metric(demo, url, demo.options.monitor_wait_s)
        _stop_live(demo, live, scorer)
        result.monitor = {version: _panel_row(f) for version, f in figures.items()}
        for version, row in sorted(result.monitor.items()):
            demo.indent(f"v{version}: {row['text']}")
        if not any("live" in f for f in figures.values()):
            feedback = demo.component.streaming.feedback
            delay = f" (labels come up to {feedback.max_delay_s}s after a prediction)" if feedback else ""
            demo.indent(
                f"no live metric yet{delay}: `mlstack monitor status {name}` shows it once "
                f"{SHIPPED_THRESHOLDS.min_labels:.0f} labels are in"
            )
        try:
            since = max(60.0, sum(result.phases.values()))
            evaluated = evaluate_range(
                Prometheus(demo.settings.prometheus_url), name, since, demo.settings.alerting.scrape_interval, ["model"]
            )
            path = demo.settings.state_dir / "reports" / f"{name}-model.png"
            result.model_report = plot_report(name, evaluated, f"{since / 60:.0f}m", path)
            demo.indent(f"model panel saved as {result.model_report}")
        except EmbeddedError as error:
            demo.indent(f"no model panel: {error}")


def _stop_live(demo: Demo, live: LiveEvents, scorer: LiveScorer) -> None:
    demo.result.live_events = live.stop()
    demo.result.live_scoring = scorer.stop().as_dict()


def _panel_row(figures: dict[str, Any]) -> dict[str, Any]:
    """One version's line: live metric (or how many labels so far), holdout, the three features drifting most."""
    metric = figures.get("metric", "metric")
    parts = []
    if "live" in figures:
        parts.append(f"live {metric} {figures['live']:.4f} over {figures.get('labelled', 0):.0f} labelled predictions")
    else:
        parts.append(f"{figures.get('labelled', 0):.0f} labelled predictions (live {metric} from more)")
    if "holdout" in figures:
        parts.append(f"holdout {figures['holdout']:.4f}")
    psi = {f: v for f, v in figures["psi"].items() if not math.isnan(v)}
    top = sorted(psi, key=lambda f: -psi[f])[:3]
    if top:
        parts.append(
            "most drift: "
            + ", ".join(f"{f} PSI {psi[f]:.3f} (p {figures['pvalue'].get(f, math.nan):.2g})" for f in top)
        )
    return {
        "live": figures.get("live"),
        "labelled": figures.get("labelled", 0.0),
        "holdout": figures.get("holdout"),
        "rows": figures.get("rows"),
        "drift": {f: psi[f] for f in top},
        "text": "; ".join(parts),
    }
