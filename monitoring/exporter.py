"""The monitor exporter of one component: reads the inference log (``<c>.predictions``) and the monitor job's
labelled predictions (``<c>.scored``), keeps sliding windows per model version (``monitoring.windows``), and every
slide publishes the window's numbers (``monitoring.stats``) as the Prometheus series of ``monitoring.metrics`` on
``--metrics-port`` and appends them to the offline store's history (``monitoring.history``, under ``--history``).

    python -m monitoring.exporter --component fraud --bootstrap 127.0.0.1:9092 --tracking-uri http://127.0.0.1:5000 \\
        --metrics-port 9464 --history /data/monitor-history [--window-s 600 --slide-s 60 --min-labels 200]

On start it reads each topic from one window back (``offsets_for_times``), so a restart rebuilds its windows
rather than starting empty, and publishes its first window once it has read what the topics held at start. A record
that does not fit its topic's format is counted (``mlstack_monitor_malformed_records_total``), logged (the first few
of each topic, then every thousandth) and skipped. A version's profile and holdout score are read from the registry
the first time it is seen; a version whose profile cannot be read gets no drift or quality series (said in the log,
retried each minute).
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import Component
from contract.profile import Profile
from contract.registry import load
from contract.streaming import topics
from monitoring import metrics as m
from monitoring.alert_rules import SHIPPED_THRESHOLDS
from monitoring.history import history_rows, write_history
from monitoring.records import MalformedRecord, RecordReader
from monitoring.stats import VersionStats, version_stats
from monitoring.topic_reader import TopicReader, now_ms
from monitoring.windows import Panes, VersionWindows, feature_views

log = logging.getLogger("monitoring.exporter")

WINDOW_S, SLIDE_S = 600, 60
"""Defaults: a 10-minute window sliding every minute."""
MIN_LABELS = int(SHIPPED_THRESHOLDS.min_labels)
"""Labelled predictions the live metric and calibration need before they are published: the alert rule's own
minimum, so a published live metric is one the rule may judge."""
PROFILE_RETRY_S = 60.0
MALFORMED_LOGGED = 5
"""Malformed records logged per topic in full; after that, every thousandth."""


def scored_topic(component: str) -> str:
    """The monitor job's output: one record per prediction joined with its label."""
    return topics(component, labels=True)["scored"]


class Registry:
    """A version's profile and holdout score, read from MLflow once (a failed profile read is retried later)."""

    def __init__(self, tracking_uri: str, component: Component) -> None:
        self.uri, self.component = tracking_uri, component
        self.profiles: dict[str, tuple[Profile | None, float]] = {}
        self.holdouts: dict[str, tuple[float, float]] = {}

    def profile(self, version: str) -> Profile | None:
        from pipelines.training.registration import load_profile

        cached = self.profiles.get(version)
        if cached is not None and (cached[0] is not None or time.monotonic() < cached[1]):
            return cached[0]
        try:
            profile: Profile | None = load_profile(self.uri, self.component.name, version)
            log.info("v%s: profile read (%d columns)", version, len(profile.columns) if profile else 0)
        except Exception as error:  # no such version, no profile, MLflow away: no drift for it until it works
            log.warning(
                "v%s: no profile, so no drift or quality series (retried in %gs): %s", version, PROFILE_RETRY_S, error
            )
            profile = None
        self.profiles[version] = (profile, time.monotonic() + PROFILE_RETRY_S)
        return profile

    def holdout(self, version: str) -> tuple[float, float]:
        """The version's holdout score and its standard error: its ``holdout_<metric>`` and
        ``holdout_<metric>_stderr`` tags, else its run's metrics; NaN if no score, a stderr of 0 if none was kept
        (a version registered before it was: the performance alert then weighs the live metric's noise alone)."""
        if version in self.holdouts:
            return self.holdouts[version]
        from mlflow import MlflowClient

        from pipelines.training.registration import holdout_stderr_name

        metric = self.component.model.metric.name
        try:
            client = MlflowClient(self.uri)
            found = client.get_model_version(self.component.name, version)
            run = client.get_run(found.run_id).data.metrics if found.run_id else {}
            score, stderr = (
                float(found.tags[name]) if name in found.tags else run.get(name, math.nan)
                for name in (f"holdout_{metric}", holdout_stderr_name(metric))
            )
        except Exception as error:
            log.warning("v%s: no holdout score from the registry: %s", version, error)
            return math.nan, 0.0  # not cached: asked again next slide
        self.holdouts[version] = (score, stderr if math.isfinite(stderr) else 0.0)
        return self.holdouts[version]


@dataclass(frozen=True)
class Snapshot:
    """What the last slide published."""

    stats: tuple[VersionStats, ...] = ()


class WindowCollector:
    """Yields the last slide's numbers as gauges at each scrape: a version that left the window has no series."""

    def __init__(self, component: Component) -> None:
        self.component = component.name
        self.metric = component.model.metric
        self.snapshot = Snapshot()

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families = {
            s.name: GaugeMetricFamily(s.name, s.help, labels=list(s.labels)) for s in m.SERIES if s.kind == "gauge"
        }

        def put(series: m.Series, value: float, *labels: str) -> None:
            if math.isfinite(value):
                families[series.name].add_metric(list(labels), float(value))

        c, metric = self.component, self.metric.name
        put(m.METRIC_TOLERANCE, self.metric.tolerance, c, metric)
        for s in self.snapshot.stats:
            v = s.version
            put(m.LABELLED_PREDICTIONS, s.labelled, c, v, metric)
            put(m.LIVE_METRIC, s.live_metric, c, v, metric)
            if math.isfinite(s.live_metric) and not math.isnan(s.live_stderr):  # +Inf: too thin to judge, said so
                families[m.LIVE_METRIC_STDERR.name].add_metric([c, v, metric], s.live_stderr)
            put(m.HOLDOUT_METRIC, s.holdout_metric, c, v, metric)
            if math.isfinite(s.holdout_metric):
                put(m.HOLDOUT_METRIC_STDERR, s.holdout_stderr, c, v, metric)
            put(m.METRIC_SHORTFALL, s.shortfall, c, v, metric)
            put(m.MEAN_PREDICTED, s.mean_predicted, c, v)
            put(m.MEAN_OBSERVED, s.mean_observed, c, v)
            put(m.WINDOW_ROWS, s.rows, c, v)
            for state, rate in s.incomplete.items():
                put(m.INCOMPLETE_ROWS, rate, c, v, state)
            if s.predictions is not None:
                put(m.PREDICTION_PSI, s.predictions.psi, c, v)
                put(m.PREDICTION_DRIFT_PVALUE, s.predictions.p_value, c, v)
            for name, d in s.columns.items():
                put(m.FEATURE_PSI, d.psi, c, v, name)
                put(m.FEATURE_DRIFT_PVALUE, d.p_value, c, v, name)
                put(m.NULL_RATE, d.null_rate, c, v, name)
                put(m.REFERENCE_NULL_RATE, d.reference_null_rate, c, v, name)
                put(m.OUT_OF_RANGE_RATE, d.out_of_range_rate, c, v, name)
                put(m.REFERENCE_OUT_OF_RANGE_RATE, d.reference_out_of_range_rate, c, v, name)
                put(m.UNSEEN_CATEGORY_RATE, d.unseen_rate, c, v, name)
                put(m.REFERENCE_UNSEEN_CATEGORY_RATE, d.reference_unseen_rate, c, v, name)
        yield from families.values()


class Exporter:
    """The windows, the registry look-ups and the outputs of one component; ``run`` drives it from Kafka."""

    def __init__(
        self,
        component: Component,
        registry: Registry,
        history: Path,
        window_s: float = WINDOW_S,
        slide_s: float = SLIDE_S,
        min_labels: int = MIN_LABELS,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter

        self.component, self.registry, self.history = component, registry, history
        self.panes = Panes(round(window_s * 1000), round(slide_s * 1000))
        self.window_s, self.min_labels = window_s, min_labels
        self.windows = VersionWindows(self.panes, feature_views(component))
        self.reader = RecordReader(component)
        self.predictions_topic, self.scored_topic = topics(component.name)["predictions"], scored_topic(component.name)
        self.metrics = CollectorRegistry(auto_describe=False)
        self.collector = WindowCollector(component)
        self.metrics.register(self.collector)
        labels = (m.COMPONENT, m.TOPIC)
        self.read = Counter(m.RECORDS_READ.name, m.RECORDS_READ.help, labels, registry=self.metrics)
        self.malformed = Counter(m.MALFORMED_RECORDS.name, m.MALFORMED_RECORDS.help, labels, registry=self.metrics)
        self.counts = {self.predictions_topic: [0, 0], self.scored_topic: [0, 0]}
        """Topic -> [read, malformed] since start, for the log."""

    def handle(self, topic: str, value: bytes | None) -> None:
        """One record; a malformed one is counted, logged and skipped."""
        self.read.labels(self.component.name, topic).inc()
        counts = self.counts.setdefault(topic, [0, 0])
        counts[0] += 1
        try:
            if topic == self.predictions_topic:
                self.windows.add_served(self.reader.served(value))
            else:
                self.windows.add_labelled(self.reader.labelled(value))
        except MalformedRecord as error:
            self.malformed.labels(self.component.name, topic).inc()
            counts[1] += 1
            if counts[1] <= MALFORMED_LOGGED or counts[1] % 1000 == 0:
                log.warning("%s: malformed record skipped (%d so far): %s", topic, counts[1], error)

    def slide(self, end_ms: int) -> list[VersionStats]:
        """Compute and publish the window ending at ``end_ms``, append its history, drop the panes it leaves."""
        model = self.component.model
        stats = []
        for version in sorted(self.windows.versions, key=_version_order):
            profile = self.registry.profile(version)
            window = self.windows.window(version, end_ms, profile)
            if not window.rows and not window.labels:
                continue  # only rows after the window's end so far
            holdout, holdout_stderr = self.registry.holdout(version)
            stats.append(
                version_stats(model, version, window, profile, holdout, self.min_labels, holdout_stderr=holdout_stderr)
            )
        self.collector.snapshot = Snapshot(tuple(stats))
        rows = history_rows(self.component.name, model.metric.name, self.window_s, end_ms, stats)
        write_history(self.history, self.component.name, end_ms, rows)
        self.windows.evict(end_ms)
        self._progress(end_ms, stats)
        return stats

    def _progress(self, end_ms: int, stats: list[VersionStats]) -> None:
        read = ", ".join(f"{topic} {r} read ({bad} malformed)" for topic, (r, bad) in self.counts.items())
        read += f"; {self.windows.late} too late for the window, {self.windows.duplicates} duplicates"
        clock = time.strftime("%H:%M:%S", time.gmtime(end_ms / 1000))
        if not stats:
            log.info("window ending %s: no rows; %s", clock, read)
        for s in stats:
            name = self.component.model.metric.name
            live = f"{name} {s.live_metric:.4f}" if math.isfinite(s.live_metric) else f"{name} not yet"
            drift = max(s.columns.items(), key=lambda item: _finite(item[1].psi), default=None)
            worst = f"max feature PSI {drift[1].psi:.3f} ({drift[0]})" if drift else "no drift (no profile)"
            log.info(
                "window ending %s v%s: %d rows, %d labelled, %s (holdout %.4f)%s, %s; %s",
                clock,
                s.version,
                s.rows,
                s.labelled,
                live,
                s.holdout_metric,
                f" [{s.error}]" if s.error else "",
                worst,
                read,
            )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (sys.maxsize, version)


def run(exporter: Exporter, reader: TopicReader, stop: list[bool]) -> None:
    """Read and slide until ``stop[0]``: every slide boundary the window ending there is published."""
    panes = exporter.panes
    reader.assign(now_ms() - panes.window_ms)
    next_slide = panes.boundary(now_ms()) + panes.slide_ms
    while not stop[0]:
        wait_s = min(1.0, max(0.0, (next_slide - now_ms()) / 1000))
        for topic, value in reader.poll(wait_s):
            exporter.handle(topic, value)
        if now_ms() >= next_slide and reader.caught_up():
            end = panes.boundary(now_ms())
            exporter.slide(end)
            next_slide = end + panes.slide_ms
            reader.assign(end - panes.window_ms)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.exporter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--component", required=True)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--tracking-uri", required=True, help="MLflow tracking URI (profiles, holdout scores)")
    parser.add_argument("--metrics-port", type=int, required=True, help="port of /metrics")
    parser.add_argument("--history", type=Path, required=True, help="offline store folder for the history")
    parser.add_argument("--window-s", type=float, default=WINDOW_S, help=f"window length (default {WINDOW_S})")
    parser.add_argument("--slide-s", type=float, default=SLIDE_S, help=f"slide, and pane length (default {SLIDE_S})")
    parser.add_argument(
        "--min-labels", type=int, default=MIN_LABELS, help=f"labels the live metric needs (default {MIN_LABELS})"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        component = load(args.component)
        exporter = Exporter(
            component,
            Registry(args.tracking_uri, component),
            args.history,
            args.window_s,
            args.slide_s,
            args.min_labels,
        )
    except ValueError as error:  # an unknown component, a window that is not a whole number of slides
        parser.error(str(error))
    from prometheus_client import start_http_server

    start_http_server(args.metrics_port, registry=exporter.metrics)
    reader = TopicReader(
        args.bootstrap, f"{component.name}-monitor-exporter", [exporter.predictions_topic, exporter.scored_topic]
    )
    stop = [False]

    def stopping(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop[0] = True

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    log.info(
        "monitoring %s: window %gs sliding every %gs, live metric from %d labels; /metrics on port %d, history in %s",
        component.name,
        args.window_s,
        args.slide_s,
        args.min_labels,
        args.metrics_port,
        args.history,
    )
    try:
        run(exporter, reader, stop)
    finally:
        reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
