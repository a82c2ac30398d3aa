"""The series the model server exports are exactly the series the canary analysis reads.

A real ``ComponentModel`` of each task (a binary classifier, a regressor, a multiclass classifier) answers requests
(good ones, a bad one, a failing one) and the process' registry is exposed the way KServe's ``/metrics`` exposes
it. Both readers then read that exposition: embedded mode's text scraper directly, and the cluster's
``PrometheusReader`` through a stand-in Prometheus that evaluates the reader's PromQL over the same samples. Both
must see exactly the requests, server errors, latencies and predictions served (scores in a histogram, predicted
classes counted per class), and the PromQL must select every counter and bucket series the server exports and
nothing else: a metric or label renamed on one side only fails here."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from contract import live_evaluation
from contract.registry import load
from local.server_metrics import snapshot_from_text
from serving import metrics
from serving.rollout.analysis import Snapshot
from serving.rollout.prometheus import PrometheusReader
from serving.runtime import ComponentModel, Scored

# The two query shapes the reader sends: sum(<series>{<selector>}) and sum by (<label>) (<series>{<selector>}).
QUERY = re.compile(r"(?:sum|max)(?: by \((?P<by>\w+)\) )?\((?P<series>\w+)\{(?P<selector>[^}]*)\}\)")
LIVE = {live_evaluation.LIVE_METRIC, live_evaluation.LIVE_METRIC_STDERR, live_evaluation.LABELLED_PREDICTIONS}
"""The monitor exporter's series the reader also queries (``test_monitor_exporter`` checks they are exported)."""
MATCHER = re.compile(r'(\w+)="([^"]*)"(?:,|$)')
GOOD, SCORES = 3, {"fraud": 0.7, "demand": 12.0, "delivery": 2.0}
"""What each model answers per row; for delivery (multiclass) the index of its most probable class."""


class ExpositionPrometheus(PrometheusReader):
    """Answers the reader's instant queries from a text exposition, as Prometheus would from its scrape."""

    def __init__(self, exposition: str) -> None:
        super().__init__("http://prometheus.invalid")
        self.samples = [s for family in text_string_to_metric_families(exposition) for s in family.samples]
        self.queried: set[str] = set()

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        match = QUERY.fullmatch(promql)
        assert match, f"a query shape this stand-in does not evaluate: {promql}"
        matchers = dict(MATCHER.findall(match["selector"]))
        assert ",".join(f'{k}="{v}"' for k, v in matchers.items()) == match["selector"], promql
        self.queried.add(match["series"])
        groups: dict[str, float] = {}
        for sample in self.samples:
            if sample.name == match["series"] and all(sample.labels.get(k) == v for k, v in matchers.items()):
                key = sample.labels[match["by"]] if match["by"] else ""
                groups[key] = groups.get(key, 0.0) + sample.value
        return [
            {"metric": {match["by"]: key} if match["by"] else {}, "value": [0, str(value)]}
            for key, value in groups.items()
        ]


def _serve(name: str, version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three good requests, one bad request and one that fails in the model, through the model's ``__call__``."""
    model = ComponentModel(load(name), f"models:/{name}/{version}", version, store=None)
    instance = model.warm_up_instance()  # a row the request schema accepts, declared domains included
    score = SCORES[name]

    def scores(columns: dict[str, list[Any]]) -> Scored:  # the model and the feature store, stood in for
        if score < 0:
            raise RuntimeError("the model failed")
        rows = len(next(iter(columns.values())))
        if not model.classes:
            return Scored(np.full(rows, score), columns, False)
        probabilities = np.full((rows, len(model.classes)), 0.1 / (len(model.classes) - 1))
        probabilities[:, int(score)] = 0.9
        return Scored(probabilities, columns, False)

    monkeypatch.setattr(model, "score", scores)

    async def requests() -> None:
        nonlocal score
        for _ in range(GOOD):
            await model({"instances": [instance]})
        with pytest.raises(Exception, match="instances"):
            await model({"rows": [instance]})
        score = -1.0
        with pytest.raises(RuntimeError, match="the model failed"):
            await model({"instances": [instance]})

    asyncio.run(requests())


def _expected(name: str) -> Snapshot:
    model = load(name).model
    if model.task == "multiclass":
        classes = {c: float(GOOD if i == SCORES[name] else 0) for i, c in enumerate(model.classes)}
        return Snapshot(requests=GOOD + 2, server_errors=1, classes=classes)
    histogram = metrics.PROBABILITY_BUCKETS if model.task == "binary" else metrics.ESTIMATE_BUCKETS
    return Snapshot(
        requests=GOOD + 2,
        server_errors=1,
        predictions={float(le): float(GOOD if SCORES[name] <= le else 0) for le in (*histogram, math.inf)},
    )


def test_the_readers_read_exactly_what_the_model_server_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"fraud": "metric-names-1", "demand": "metric-names-2", "delivery": "metric-names-3"}
    for name, version in versions.items():
        _serve(name, version, monkeypatch)
    exposition = generate_latest(REGISTRY).decode()  # what KServe's /metrics answers (the default registry)
    prometheus = ExpositionPrometheus(exposition)

    for name, version in versions.items():
        scraped = snapshot_from_text(exposition, name, version)
        queried = prometheus.snapshot(name, version)
        assert scraped == queried
        assert set(scraped.latency) == {*map(float, metrics.LATENCY_BUCKETS), math.inf}
        assert scraped.latency[math.inf] == GOOD + 2  # every request is timed, bad and failed ones too
        scraped.latency = {}
        assert scraped == _expected(name)

    exported = {
        s.name
        for s in prometheus.samples
        if s.labels.get(metrics.VERSION) in versions.values() and s.name.endswith(("_total", "_bucket"))
    }
    assert prometheus.queried - LIVE == exported - set(metrics.NOT_COMPARED)
