"""``TrafficBackend`` for a cluster: patches the component's InferenceService (its served version and
``canaryTrafficPercent``) and reads each version's counters from Prometheus.

The rollout's bookkeeping (stable and canary version, the rollout state) lives in a ConfigMap
``<component>-rollout`` beside the InferenceService, so any operator's ``kubectl canary status`` sees the same
rollout. Not in annotations on the InferenceService: KServe copies those onto the Knative revision template, so
every step's bookkeeping would start a new revision (new pods) under the canary.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from serving.inference_service import GROUP, PLURAL, VERSION, served_version, with_version
from serving.rollout.analysis import Snapshot

STABLE, CANARY, STATE = "stable-version", "canary-version", "rollout"


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
    def __init__(
        self,
        api: Any,
        core: Any,
        namespace: str,
        component: str,
        prometheus: PrometheusReader,
        champion_version: Callable[[], str],
    ) -> None:
        """``api``: a ``kubernetes.client.CustomObjectsApi``; ``core``: a ``CoreV1Api``; ``champion_version``:
        the registry's ``champion`` alias, for a service deployed on the alias before any rollout."""
        self.api = api
        self.core = core
        self.namespace = namespace
        self.component = component
        self.prometheus = prometheus
        self.champion_version = champion_version
        self.config_map = f"{component}-rollout"

    def _get(self) -> dict[str, Any]:
        isvc: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.component
        )
        return isvc

    def _patch(self, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.component, body)

    def _books(self) -> dict[str, str]:
        from kubernetes.client.exceptions import ApiException

        try:
            config_map = self.core.read_namespaced_config_map(self.config_map, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return {}
            raise
        return dict(config_map.data or {})

    def _write(self, changes: dict[str, str | None]) -> None:
        """Merge ``changes`` into the ConfigMap (None removes a key), creating it the first time."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.patch_namespaced_config_map(self.config_map, self.namespace, {"data": changes})
        except ApiException as error:
            if error.status != 404:
                raise
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self.config_map,
                    "labels": {"app.kubernetes.io/part-of": "mlstack", "mlstack.io/component": self.component},
                },
                "data": {k: v for k, v in changes.items() if v is not None},
            }
            self.core.create_namespaced_config_map(self.namespace, body)

    def _stable(self, books: dict[str, str]) -> str:
        """The last promoted version; before any promotion, the version the service was deployed with, or the
        ``champion`` alias it resolved at start when deployed on the alias."""
        return books.get(STABLE) or served_version(self._get()) or self.champion_version()

    def stable_version(self) -> str:
        return self._stable(self._books())

    def start_canary(self, version: str, share: int) -> None:
        """A new revision with ``version``; Knative routes ``share``% to it and the rest to the stable revision."""
        stable = self.stable_version()
        self._write({STABLE: stable, CANARY: version})
        self._patch(
            {"spec": {"predictor": {"canaryTrafficPercent": share, "containers": with_version(self._get(), version)}}}
        )

    def set_share(self, share: int) -> None:
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": share}}})

    def promote(self) -> None:
        """Removing ``canaryTrafficPercent`` sends all traffic to the latest (canary) revision."""
        version = self._books()[CANARY]
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": None}}})
        self._write({STABLE: version, CANARY: None})

    def rollback(self) -> None:
        """0% pins the previous revision at once; then the spec returns to the stable version."""
        self.set_share(0)
        stable = self.stable_version()
        self._patch(
            {"spec": {"predictor": {"canaryTrafficPercent": None, "containers": with_version(self._get(), stable)}}}
        )
        self._write({CANARY: None})

    def snapshots(self) -> tuple[Snapshot, Snapshot]:
        books = self._books()
        stable = self.prometheus.snapshot(self.component, self._stable(books))
        canary_version = books.get(CANARY)
        canary = self.prometheus.snapshot(self.component, canary_version) if canary_version else Snapshot()
        return stable, canary

    def load_state(self) -> dict[str, object] | None:
        text = self._books().get(STATE)
        if not text:
            return None
        state: dict[str, object] = json.loads(text)
        return state

    def save_state(self, state: dict[str, object] | None) -> None:
        self._write({STATE: json.dumps(state) if state is not None else None})
