"""The dashboards of both modes, as data: what an engineer on call for a component looks at (streaming, serving,
model), each panel a title, a unit and PromQL queries with the labels their legend shows.

One source, two renderings: ``grafana_json`` builds the cluster's Grafana dashboards with grafana-foundation-sdk
(provisioned as ConfigMaps, ``infra/services/grafana.py``), and embedded mode, which has no Grafana (not packaged for
Debian), evaluates the very same queries against its own Prometheus (``local/dashboard_report.py``: a PNG and a
table). Queries hold two placeholders Grafana fills itself: ``$component`` (the dashboard's variable) and
``$__rate_interval`` (the range of rates); ``Query.promql`` fills them for a component and a range.

Series names come from their owners: ``monitoring.metrics`` (the monitor job), ``pipelines.streaming.freshness`` and
``topic_offsets`` (the feature pusher), and the model server's ``serving.metrics``, which monitoring may not import:
``dashboards`` takes it as an argument shaped by ``ServingSeries``, as ``monitoring.alert_rules`` does.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any, Protocol

from monitoring import metrics as m
from pipelines.streaming import topic_offsets as t

COMPONENT_VAR = "$component"
RATE_VAR = "$__rate_interval"
DATASOURCE_UID = "prometheus"
"""The uid of the Prometheus data source Grafana is provisioned with (``infra/services/grafana.py``)."""
SERIES_NAME = re.compile(r"\bmlstack_[a-z0-9_]+\b")


class ServingSeries(Protocol):
    """The model server's names the serving and model panels select; the module ``serving.metrics`` is one."""

    REQUESTS_TOTAL: str
    ERRORS_TOTAL: str
    LATENCY_BUCKET: str
    DEGRADED_TOTAL: str
    LOG_WRITTEN_TOTAL: str
    LOG_DROPPED_TOTAL: str
    PROBABILITY_NAME: str
    ESTIMATE_NAME: str
    PREDICTED_CLASS_TOTAL: str
    KIND: str
    SERVER_ERROR: str
    REASON: str
    CLASS: str
    BUCKET_BOUND: str


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel; its series are named by ``legend``'s labels (and a fixed ``prefix``)."""

    expr: str
    legend: tuple[str, ...]
    prefix: str = ""

    def promql(self, component: str, rate_window: str = "5m") -> str:
        """The query for one component with ``rate_window`` as the rates' range."""
        if not re.fullmatch(r"[a-z][a-z0-9_]*", component):
            raise ValueError(f"component {component!r}: expected a lower-case name (letters, digits, underscores)")
        return self.expr.replace(COMPONENT_VAR, component).replace(RATE_VAR, rate_window)

    @property
    def legend_format(self) -> str:
        """Grafana's legend template, e.g. ``p99 {{version}}``."""
        return " ".join(part for part in (self.prefix, *(f"{{{{{label}}}}}" for label in self.legend)) if part)

    def series_label(self, labels: dict[str, str]) -> str:
        """The legend of one result series, as Grafana would show it."""
        shown = [labels.get(label, "") for label in self.legend]
        return " ".join(part for part in (self.prefix, *shown) if part) or "value"

    def series(self) -> set[str]:
        """The ``mlstack_*`` series the query selects."""
        return set(SERIES_NAME.findall(self.expr))


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    """Grafana's unit id (``s``, ``reqps``, ``percentunit``, ``short``, ``none``)."""
    queries: tuple[Query, ...]
    description: str


@dataclass(frozen=True)
class Dashboard:
    key: str
    """``streaming``, ``serving`` or ``model``: what ``mlstack monitor report <component> --dashboard`` names."""
    title: str
    description: str
    panels: tuple[Panel, ...]
    variable_series: str
    """A series whose ``component`` values list the components this dashboard can show."""

    @property
    def uid(self) -> str:
        return f"mlstack-{self.key}"


def _sel(series: str, **matchers: str) -> str:
    """``series{component="$component", ...}``."""
    pairs = [f'{m.COMPONENT}="{COMPONENT_VAR}"', *(f'{k}="{v}"' for k, v in matchers.items())]
    return f"{series}{{{', '.join(pairs)}}}"


def _rate(series: str, **matchers: str) -> str:
    return f"rate({_sel(series, **matchers)}[{RATE_VAR}])"


def _quantile(q: float, bucket: str, by: str, bound: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}, {bound}) ({_rate(bucket)}))"


def streaming() -> Dashboard:
    records, lag, topic = t.RECORDS_TOTAL, t.LAG, t.TOPIC
    freshness = m.FRESHNESS.selector
    panels = (
        Panel(
            "Events in and window results out",
            "ops",
            (
                Query(f"sum({_rate(records, **{topic: t.EVENTS})})", (), "events/s"),
                Query(f"sum({_rate(records, **{topic: t.FEATURES})})", (), "window results/s"),
            ),
            "Records written to the events topic (the stream's input) and to the features topic (the Flink job's "
            "window results), per second.",
        ),
        Panel(
            "Consumer lag",
            "short",
            (Query(f"max by ({t.GROUP}, {topic}) ({_sel(lag)})", (t.GROUP, topic)),),
            "Records not yet committed per consumer: the Flink job (commits on checkpoints, so up to one interval "
            "behind by design), the Feast pusher, the event archive. A lag that keeps growing is a stuck stage.",
        ),
        Panel(
            "Dead letters",
            "short",
            (
                Query(f"sum({_sel(records, **{topic: t.DEAD_LETTER})})", (), "total"),
                Query(f"sum(increase({_sel(records, **{topic: t.DEAD_LETTER})}[{RATE_VAR}]))", (), "new"),
            ),
            "Events the job could not parse or validate, sent to the dead-letter topic: in total and new within "
            "the rate range.",
        ),
        Panel(
            "Feature freshness (window close -> online store)",
            "s",
            (
                Query(_quantile(0.5, freshness, m.GROUP), (m.GROUP,), "p50"),
                Query(_quantile(0.99, freshness, m.GROUP), (m.GROUP,), "p99"),
            ),
            "Per feature group, seconds from a window's close until its features are readable online. Goal: p99 "
            "under 1 s (the FeatureFreshnessSlow alert).",
        ),
    )
    return Dashboard(
        "streaming",
        "mlstack: streaming features",
        "Kafka -> Flink -> Feast for one component: throughput, lag, dead letters, freshness.",
        panels,
        t.RECORDS_TOTAL,
    )


def serving(s: ServingSeries) -> Dashboard:
    by = m.VERSION
    requests = f"sum by ({by}) ({_rate(s.REQUESTS_TOTAL)})"
    panels = (
        Panel(
            "Requests per version",
            "reqps",
            (Query(requests, (by,)),),
            "Prediction requests per second, per registry version (stable and canary apart).",
        ),
        Panel(
            "Errors per version",
            "reqps",
            (Query(f"sum by ({by}, {s.KIND}) ({_rate(s.ERRORS_TOTAL)})", (by, s.KIND)),),
            "Failed requests per second: 'server' errors are the service's (5xx), 'bad request' the caller's (4xx).",
        ),
        Panel(
            "Server error ratio",
            "percentunit",
            (
                Query(
                    f"sum by ({by}) ({_rate(s.ERRORS_TOTAL, **{s.KIND: s.SERVER_ERROR})}) / {requests}",
                    (by,),
                ),
            ),
            "Share of requests answered with a server error (the ServingErrorRateHigh alert: over 1%).",
        ),
        Panel(
            "Latency per version",
            "s",
            (
                Query(_quantile(0.5, s.LATENCY_BUCKET, by, s.BUCKET_BOUND), (by,), "p50"),
                Query(_quantile(0.99, s.LATENCY_BUCKET, by, s.BUCKET_BOUND), (by,), "p99"),
            ),
            "Feature lookup + model per request (the ServingLatencyHigh alert: p99 over 0.1 s).",
        ),
        Panel(
            "Degraded answers",
            "percentunit",
            (Query(f"sum by ({by}) ({_rate(s.DEGRADED_TOTAL)}) / {requests}", (by,)),),
            "Share of requests answered without online features (the store unreachable or over its budget).",
        ),
        Panel(
            "Inference log",
            "ops",
            (
                Query(f"sum by ({by}) ({_rate(s.LOG_WRITTEN_TOTAL)})", (by,), "written"),
                Query(f"sum by ({by}, {s.REASON}) ({_rate(s.LOG_DROPPED_TOTAL)})", (by, s.REASON), "dropped"),
            ),
            "Records per second of the predictions topic: written, and dropped (never blocking a request).",
        ),
    )
    return Dashboard(
        "serving",
        "mlstack: serving",
        "The model servers of one component, per registry version.",
        panels,
        s.REQUESTS_TOTAL,
    )


def model(s: ServingSeries) -> Dashboard:
    by, keys = m.VERSION, f"{m.VERSION}, {m.METRIC}"
    classes = f"sum by ({by}, {s.CLASS}) ({_rate(s.PREDICTED_CLASS_TOTAL)})"
    panels = (
        Panel(
            "Live metric per version",
            "none",
            (
                Query(f"max by ({keys}) ({_sel(m.LIVE_METRIC.selector)})", (by, m.METRIC), "live"),
                Query(f"max by ({keys}) ({_sel(m.HOLDOUT_METRIC.selector)})", (by, m.METRIC), "holdout"),
            ),
            "The component's own metric on the labelled predictions of the monitor's window, beside the version's "
            "holdout score (the LiveMetricBelowHoldout alert: shortfall over the tolerance).",
        ),
        Panel(
            "Labelled predictions",
            "short",
            (Query(f"max by ({keys}) ({_sel(m.LABELLED_PREDICTIONS.selector)})", (by, m.METRIC)),),
            "How many labelled predictions the live metric rests on (no alert below 200).",
        ),
        Panel(
            "Calibration",
            "none",
            (
                Query(f"max by ({by}) ({_sel(m.MEAN_PREDICTED.selector)})", (by,), "predicted"),
                Query(f"max by ({by}) ({_sel(m.MEAN_OBSERVED.selector)})", (by,), "observed"),
            ),
            "Mean prediction vs observed outcome over the labelled predictions of the window.",
        ),
        Panel(
            "Feature drift (PSI)",
            "none",
            (Query(f"max by ({by}, {m.FEATURE}) ({_sel(m.FEATURE_PSI.selector)})", (by, m.FEATURE)),),
            "Population stability index of each served feature against the version's training profile (alert: "
            "over 0.2 with the window's test rejecting at p < 0.01).",
        ),
        Panel(
            "Prediction drift (PSI)",
            "none",
            (Query(f"max by ({by}) ({_sel(m.PREDICTION_PSI.selector)})", (by,)),),
            "Population stability index of the predictions against the holdout's.",
        ),
        Panel(
            "Prediction distribution",
            "none",
            (
                *(
                    Query(_quantile(q, f"{name}_bucket", by, s.BUCKET_BOUND), (by,), f"p{round(q * 100)}")
                    for name in (s.PROBABILITY_NAME, s.ESTIMATE_NAME)
                    for q in (0.1, 0.5, 0.9)
                ),
                Query(f"{classes} / on({by}) group_left() sum by ({by}) ({classes})", (by, s.CLASS), "share"),
            ),
            "What the servers answer: quantiles of the predicted probability (binary) or estimate (regression), or "
            "each predicted class's share (multiclass).",
        ),
        Panel(
            "Rows served with incomplete features",
            "percentunit",
            (Query(f"max by ({by}, {m.STATE}) ({_sel(m.INCOMPLETE_ROWS.selector)})", (by, m.STATE)),),
            "Share of the window's rows scored with stale or absent online features.",
        ),
    )
    return Dashboard(
        "model",
        "mlstack: model",
        "How good one component's served models are and whether their inputs drift.",
        panels,
        s.REQUESTS_TOTAL,
    )


def dashboards(s: ServingSeries) -> tuple[Dashboard, ...]:
    """Every dashboard, in the order the report draws them."""
    return (streaming(), serving(s), model(s))


def by_key(s: ServingSeries, key: str) -> Dashboard:
    found = {d.key: d for d in dashboards(s)}
    if key not in found:
        raise ValueError(f"unknown dashboard {key!r}; known: {', '.join(found)}")
    return found[key]


def known_series(s: ServingSeries) -> set[str]:
    """Every series name an exporter of this project exports, as Prometheus stores it."""
    serving_names = {
        s.REQUESTS_TOTAL,
        s.ERRORS_TOTAL,
        s.LATENCY_BUCKET,
        s.DEGRADED_TOTAL,
        s.LOG_WRITTEN_TOTAL,
        s.LOG_DROPPED_TOTAL,
        s.PREDICTED_CLASS_TOTAL,
        *(f"{name}_{part}" for name in (s.PROBABILITY_NAME, s.ESTIMATE_NAME) for part in ("bucket", "sum", "count")),
    }
    return {*(series.selector for series in m.SERIES), t.RECORDS_TOTAL, t.LAG, *serving_names}


# -- Grafana -------------------------------------------------------------------------------------------------


def grafana_model(dashboard: Dashboard) -> Any:
    """The dashboard as grafana-foundation-sdk's model (``dashboard.Dashboard``)."""
    from grafana_foundation_sdk.builders import dashboard as gd
    from grafana_foundation_sdk.builders import prometheus, timeseries
    from grafana_foundation_sdk.models.common import DataSourceRef
    from grafana_foundation_sdk.models.dashboard import VariableRefresh

    source = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    component = (
        gd.QueryVariable(COMPONENT_VAR.lstrip("$"))
        .label("component")
        .datasource(source)
        .query(f"label_values({dashboard.variable_series}, {m.COMPONENT})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )
    builder = (
        gd.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(["mlstack", dashboard.key])
        .readonly()
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(component)
    )
    for panel in dashboard.panels:
        graph = (
            timeseries.Panel()
            .title(panel.title)
            .description(panel.description)
            .unit(panel.unit)
            .datasource(source)
            .height(8)
            .span(12)
        )
        for ref, query in zip(string.ascii_uppercase, panel.queries, strict=False):
            graph = graph.with_target(
                prometheus.Dataquery().expr(query.expr).legend_format(query.legend_format).ref_id(ref)
            )
        builder = builder.with_panel(graph)
    return builder.build()


def grafana_json(dashboard: Dashboard) -> str:
    """The dashboard JSON Grafana's provisioning reads (what the dashboards ConfigMap holds)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.dumps(grafana_model(dashboard), cls=JSONEncoder, indent=2, sort_keys=True)
