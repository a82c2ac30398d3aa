"""Each model version's counters, read from Prometheus (the series ``serving.metrics`` exports and names,
labelled by component and version), and its live metric where the component's monitor exports one.

A snapshot's queries are all evaluated at one instant (the API's ``time`` parameter): evaluated each at its own
"now", the requests and the errors could come from different scrapes, and a window's rate from counters read at
different moments can show more errors than requests."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from contract import live_evaluation as live
from contract.live_evaluation import Estimate
from serving import metrics
from serving.rollout.analysis import Snapshot


class PrometheusReader:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query, evaluated at ``at`` (Unix seconds; None: the server's now)."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        target = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(target, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed: {body.get('error', body)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def snapshot(self, component: str, version: str) -> Snapshot:
        selector = f'{metrics.COMPONENT}="{component}",{metrics.VERSION}="{version}"'
        at = time.time()

        def scalar(promql: str) -> float:
            result = self.query(promql, at)
            return float(result[0]["value"][1]) if result else 0.0

        def buckets(series: str) -> dict[float, float]:
            return {
                float(r["metric"][metrics.BUCKET_BOUND]): float(r["value"][1])
                for r in self.query(f"sum by ({metrics.BUCKET_BOUND}) ({series}{{{selector}}})", at)
            }

        probability, estimate = metrics.PREDICTION_BUCKETS  # a version exports one of them, or classes
        predictions = buckets(probability) or buckets(estimate)
        classes = {
            r["metric"][metrics.CLASS]: float(r["value"][1])
            for r in self.query(f"sum by ({metrics.CLASS}) ({metrics.PREDICTED_CLASS_TOTAL}{{{selector}}})", at)
        }
        return Snapshot(
            requests=scalar(f"sum({metrics.REQUESTS_TOTAL}{{{selector}}})"),
            server_errors=scalar(f'sum({metrics.ERRORS_TOTAL}{{{selector},{metrics.KIND}="{metrics.SERVER_ERROR}"}})'),
            latency=buckets(metrics.LATENCY_BUCKET),
            predictions=predictions,
            classes=classes,
            live=self.live(selector, at),
        )

    def version_live(self, component: str, version: str) -> Estimate | None:
        """``live`` of one version, now; None too when Prometheus cannot be reached (embedded mode without it)."""
        selector = f'{metrics.COMPONENT}="{component}",{metrics.VERSION}="{version}"'
        try:
            return self.live(selector, time.time())
        except OSError:
            return None

    def live(self, selector: str, at: float) -> Estimate | None:
        """The monitor's live metric of the version, with its standard error and labelled count; None where the
        monitor exports none (no monitor, no labelled prediction of the version yet)."""
        values = []
        for series in (live.LIVE_METRIC, live.LIVE_METRIC_STDERR, live.LABELLED_PREDICTIONS):
            result = self.query(f"max({series}{{{selector}}})", at)
            if not result:
                return None
            values.append(float(result[0]["value"][1]))
        value, stderr, count = values
        return Estimate(value, stderr, int(count))
