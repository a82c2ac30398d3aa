"""``TrafficBackend`` for a cluster: patches the component's InferenceService (``canaryTrafficPercent``) and reads
each version's counters from Prometheus. The rollout's state lives in an annotation on the InferenceService,
so any operator's ``kubectl canary status`` sees the same rollout."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from serving.inference_service import (
    CANARY_ANNOTATION,
    GROUP,
    PLURAL,
    ROLLOUT_ANNOTATION,
    STABLE_ANNOTATION,
    VERSION,
    with_version,
)
from serving.rollout.analysis import Snapshot


class PrometheusReader:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, promql: str) -> list[dict[str, Any]]:
        target = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(target, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed: {body.get('error', body)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def snapshot(self, component: str, version: str) -> Snapshot:
        selector = f'component="{component}",version="{version}"'

        def scalar(promql: str) -> float:
            result = self.query(promql)
            return float(result[0]["value"][1]) if result else 0.0

        def buckets(metric: str) -> dict[float, float]:
            return {
                float(r["metric"]["le"]): float(r["value"][1])
                for r in self.query(f"sum by (le) ({metric}_bucket{{{selector}}})")
            }

        predictions = buckets("mlstack_prediction_probability") or buckets("mlstack_prediction_estimate")
        return Snapshot(
            requests=scalar(f"sum(mlstack_requests_total{{{selector}}})"),
            server_errors=scalar(f'sum(mlstack_request_errors_total{{{selector},kind="server"}})'),
            latency=buckets("mlstack_request_latency_seconds"),
            predictions=predictions,
        )


class ClusterBackend:
    def __init__(self, api: Any, namespace: str, component: str, prometheus: PrometheusReader) -> None:
        """``api``: a ``kubernetes.client.CustomObjectsApi``."""
        self.api = api
        self.namespace = namespace
        self.component = component
        self.prometheus = prometheus

    def _get(self) -> dict[str, Any]:
        isvc: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.component
        )
        return isvc

    def _patch(self, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.component, body)

    def stable_version(self) -> str:
        return str(self._get()["metadata"]["annotations"][STABLE_ANNOTATION])

    def start_canary(self, version: str, share: int) -> None:
        """A new revision with ``version``; Knative routes ``share``% to it and the rest to the stable revision."""
        isvc = self._get()
        self._patch(
            {
                "metadata": {"annotations": {CANARY_ANNOTATION: version}},
                "spec": {"predictor": {"canaryTrafficPercent": share, "containers": with_version(isvc, version)}},
            }
        )

    def set_share(self, share: int) -> None:
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": share}}})

    def promote(self) -> None:
        """Removing ``canaryTrafficPercent`` sends all traffic to the latest (canary) revision."""
        version = self._get()["metadata"]["annotations"][CANARY_ANNOTATION]
        self._patch(
            {
                "metadata": {"annotations": {STABLE_ANNOTATION: version, CANARY_ANNOTATION: None}},
                "spec": {"predictor": {"canaryTrafficPercent": None}},
            }
        )

    def rollback(self) -> None:
        """0% pins the previous revision at once; then the spec returns to the stable version."""
        self.set_share(0)
        isvc = self._get()
        stable = isvc["metadata"]["annotations"][STABLE_ANNOTATION]
        self._patch(
            {
                "metadata": {"annotations": {CANARY_ANNOTATION: None}},
                "spec": {"predictor": {"canaryTrafficPercent": None, "containers": with_version(isvc, stable)}},
            }
        )

    def snapshots(self) -> tuple[Snapshot, Snapshot]:
        annotations = self._get()["metadata"]["annotations"]
        stable = self.prometheus.snapshot(self.component, annotations[STABLE_ANNOTATION])
        canary_version = annotations.get(CANARY_ANNOTATION)
        canary = self.prometheus.snapshot(self.component, canary_version) if canary_version else Snapshot()
        return stable, canary

    def load_state(self) -> dict[str, object] | None:
        text = self._get()["metadata"].get("annotations", {}).get(ROLLOUT_ANNOTATION)
        if not text:
            return None
        state: dict[str, object] = json.loads(text)
        return state

    def save_state(self, state: dict[str, object] | None) -> None:
        value = json.dumps(state) if state is not None else None
        self._patch({"metadata": {"annotations": {ROLLOUT_ANNOTATION: value}}})
