"""``TrafficBackend`` for a cluster: patches the component's InferenceService (its served version and
``canaryTrafficPercent``), reads the traffic split KServe reports, and reads each version's counters from Prometheus.

The rollout's bookkeeping (stable and canary version, the rollout state) lives in a ConfigMap
``<component>-rollout`` beside the InferenceService, so any operator's ``kubectl canary status`` sees the same
rollout. Not in annotations on the InferenceService: KServe copies those onto the Knative revision template, so
every step's bookkeeping would start a new revision (new pods) under the canary.

What KServe does with the spec (checked at kserve/kserve@v0.16.0,
pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go, ``createKnativeService``): with
``canaryTrafficPercent: p`` the Knative route sends p% to ``latestRevision`` and 100-p% to the predictor's
``latestRolledoutRevision`` (tag ``prev``); without the field, 100% to ``latestRevision``. Knative resolves
``latestRevision`` to the configuration's latest *ready* revision, so a spec change shows up in the split only once
its new revision is ready. KServe reports the outcome in ``status.components.predictor``
(pkg/apis/serving/v1beta1/inference_service_status.go, ``ComponentStatusSpec`` and ``PropagateStatus``):
``latestCreatedRevision``, ``latestReadyRevision``, ``latestRolledoutRevision``, ``previousRolledoutRevision`` and
``traffic[]`` (Knative ``TrafficTarget``: ``revisionName``, ``percent``, ``latestRevision``, ``tag``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serving.inference_service import GROUP, PLURAL, VERSION, served_version, with_version
from serving.rollout.analysis import Snapshot
from serving.rollout.prometheus import PrometheusReader as PrometheusReader  # where its users import it from
from serving.rollout.rollout import RolloutError

STABLE, CANARY, STATE = "stable-version", "canary-version", "rollout"
REVISIONS = ("serving.knative.dev", "v1", "revisions")
FIELD_MANAGER = "kubectl-canary"
"""Owner of the fields the rollout patches, as the API server's managedFields show it (infra's ignoreChanges)."""


class RevisionNotReady(RolloutError):
    """The reverted revision of a rollback did not become ready in time; the canary keeps 0% meanwhile."""


@dataclass(frozen=True)
class PredictorStatus:
    """``status.components.predictor`` of the InferenceService (names as KServe v0.16.0 writes them)."""

    latest_created: str
    latest_ready: str
    rolled_out: str
    traffic: tuple[tuple[str, int], ...]
    """(revision, percent) per route target; ``latestRevision`` targets already resolved to a revision."""

    @classmethod
    def of(cls, isvc: dict[str, Any]) -> PredictorStatus:
        predictor = isvc.get("status", {}).get("components", {}).get("predictor", {})
        return cls(
            latest_created=predictor.get("latestCreatedRevision", ""),
            latest_ready=predictor.get("latestReadyRevision", ""),
            rolled_out=predictor.get("latestRolledoutRevision", ""),
            traffic=tuple((t.get("revisionName", ""), int(t.get("percent", 0))) for t in predictor.get("traffic", [])),
        )

    @property
    def settled(self) -> bool:
        """The newest revision is ready, so ``latestRevision`` means it (and not an older ready one)."""
        return bool(self.latest_created) and self.latest_ready == self.latest_created

    def describe(self) -> str:
        return ", ".join(f"{revision or '?'} {percent}%" for revision, percent in self.traffic) or "none reported"


class ClusterBackend:
    def __init__(
        self,
        api: Any,
        core: Any,
        namespace: str,
        component: str,
        prometheus: PrometheusReader,
        champion_version: Callable[[], str],
        ready_timeout_s: float = 600.0,
        poll_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``api``: a ``kubernetes.client.CustomObjectsApi``; ``core``: a ``CoreV1Api``; ``champion_version``:
        the registry's ``champion`` alias, for a service deployed on the alias before any rollout;
        ``ready_timeout_s``: how long a rollback waits for its reverted revision, polling every ``poll_s``."""
        self.api = api
        self.core = core
        self.namespace = namespace
        self.component = component
        self.prometheus = prometheus
        self.champion_version = champion_version
        self.config_map = f"{component}-rollout"
        self.ready_timeout_s = ready_timeout_s
        self.poll_s = poll_s
        self.sleep = sleep
        self._versions: dict[str, str] = {}  # revision -> model version (a revision's spec never changes)

    def _get(self) -> dict[str, Any]:
        isvc: dict[str, Any] = self.api.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.component
        )
        return isvc

    def _patch(self, body: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, self.component, body, field_manager=FIELD_MANAGER
        )

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

    # -- what KServe reports -------------------------------------------------------------------------------

    def predictor(self) -> PredictorStatus:
        return PredictorStatus.of(self._get())

    def _revision_version(self, revision: str) -> str | None:
        """The ``--model-version`` the Knative revision runs ("" for the alias), None if it cannot be read."""
        from kubernetes.client.exceptions import ApiException

        if not revision:
            return None
        if revision not in self._versions:
            try:
                obj = self.api.get_namespaced_custom_object(*REVISIONS[:2], self.namespace, REVISIONS[2], revision)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            for container in obj.get("spec", {}).get("containers", []):
                args = list(container.get("args", []))
                if "--model-version" in args:
                    self._versions[revision] = str(args[args.index("--model-version") + 1])
        return self._versions.get(revision)

    def reported_traffic(self, status: PredictorStatus | None = None) -> dict[str, int]:
        """Percent of requests per model version, as the InferenceService reports its route (a revision
        deployed on the ``champion`` alias counts as the stable version)."""
        books, shares = self._books(), dict[str, int]()
        for revision, percent in (status or self.predictor()).traffic:
            version = self._revision_version(revision)
            key = f"revision {revision or '?'}" if version is None else version or self._stable(books)
            shares[key] = shares.get(key, 0) + percent
        return shares

    def split_pending(self, share: int | None) -> str:
        """Why the reported split is not (yet) the canary at ``share``% ("" when it is); ``share`` None: why
        the service is not settled on one ready version with no split set."""
        isvc = self._get()
        status = PredictorStatus.of(isvc)
        if not status.settled:
            return (
                f"revision {status.latest_created or '(none yet)'} is not ready "
                f"(latest ready: {status.latest_ready or 'none'}; traffic: {status.describe()})"
            )
        traffic = {v: p for v, p in self.reported_traffic(status).items() if p}
        if share is None:
            set_share = isvc["spec"]["predictor"].get("canaryTrafficPercent")
            if set_share is not None:
                return f"canaryTrafficPercent is still {set_share}: finish the previous rollout first"
            if len(traffic) != 1:
                return f"traffic is split over {', '.join(f'v{v} {p}%' for v, p in traffic.items())}"
            return ""
        canary = self._books().get(CANARY, "")
        if self._revision_version(status.latest_created) != canary:
            return f"no revision of v{canary} is ready yet (latest: {status.latest_created})"
        if traffic.get(canary, 0) != share:
            return f"v{canary} gets {traffic.get(canary, 0)}% of requests, not {share}% yet ({status.describe()})"
        return ""

    # -- moves ---------------------------------------------------------------------------------------------

    def start_canary(self, version: str, share: int) -> None:
        """A new revision with ``version``; Knative routes ``share``% to it (once ready) and the rest to the
        stable revision."""
        stable = self.stable_version()
        self._write({STABLE: stable, CANARY: version})
        self._patch(
            {"spec": {"predictor": {"canaryTrafficPercent": share, "containers": with_version(self._get(), version)}}}
        )

    def set_share(self, share: int) -> None:
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": share}}})

    def promote(self) -> None:
        """Removing ``canaryTrafficPercent`` sends all traffic to the latest ready (the canary's) revision."""
        version = self._books()[CANARY]
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": None}}})
        self._write({STABLE: version, CANARY: None})

    def rollback(self) -> None:
        """0% pins the rolled-out (stable) revision at once; the spec returns to the stable version, which is a
        new revision; only when that is the latest *ready* one may the field go, or ``latestRevision`` would
        still mean the rejected canary and get all traffic."""
        stable = self.stable_version()
        self.set_share(0)
        isvc = self._get()
        containers = with_version(isvc, stable)
        if containers != isvc["spec"]["predictor"]["containers"]:  # unchanged when a timed-out rollback is retried
            self._patch({"spec": {"predictor": {"containers": containers}}})
        self._await_ready(stable)
        self._patch({"spec": {"predictor": {"canaryTrafficPercent": None}}})
        self._write({CANARY: None})

    def _await_ready(self, version: str) -> None:
        """Until the latest created revision runs ``version`` and is the latest ready one, within the timeout."""
        waited = 0.0
        while True:
            status = self.predictor()
            created = self._revision_version(status.latest_created) if status.latest_created else None
            if status.settled and created == version:
                return
            if waited >= self.ready_timeout_s:
                what = (
                    f"revision {status.latest_created} (v{version})"
                    if created == version
                    else f"no revision of v{version} (latest created: {status.latest_created or 'none'})"
                )
                raise RevisionNotReady(
                    f"rollback of {self.component}: {what} did not become ready within {self.ready_timeout_s:.0f}s; "
                    f"canaryTrafficPercent stays 0, so {status.rolled_out or 'the rolled-out revision'} serves all "
                    f"traffic ({status.describe()}). See `kubectl get revisions -n {self.namespace}`, then run the "
                    "rollback again."
                )
            self.sleep(self.poll_s)
            waited += self.poll_s

    # -- counters and state --------------------------------------------------------------------------------

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
