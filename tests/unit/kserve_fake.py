"""A fake Kubernetes API for one InferenceService in Knative mode: the custom-objects calls the rollout makes
(the InferenceService, Knative revisions) and the ConfigMap calls (``CoreV1Api``), with what KServe v0.16.0 and
Knative do in between: a change of the predictor's containers creates a revision, which becomes ready after a set
number of polls (or never); the route follows KServe's rule and Knative's resolution of ``latestRevision`` to the
latest *ready* revision; the status carries the revision names and the resolved split.

Rules reproduced, checked at kserve/kserve@v0.16.0: the route (``createKnativeService`` in
pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go) and the rolled-out bookkeeping
(``PropagateStatus`` in pkg/apis/serving/v1beta1/inference_service_status.go). Not a KServe: one namespace, one
service, a reconcile after every write and every poll.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
REVISIONS = ("serving.knative.dev", "v1", "revisions")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies ``patch_namespaced_custom_object`` with a merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class RecordingConfigMaps:
    """``CoreV1Api``'s ConfigMap calls on one namespace, with the API server's 404 and merge-patch behaviour."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[str, Any]] = {}

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        from kubernetes.client import V1ConfigMap
        from kubernetes.client.exceptions import ApiException

        if name not in self.maps:
            raise ApiException(status=404, reason="Not Found")
        return V1ConfigMap(data=copy.deepcopy(self.maps[name].get("data")))

    def patch_namespaced_config_map(self, name: str, namespace: str, body: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        if name not in self.maps:
            raise ApiException(status=404, reason="Not Found")
        self.maps[name] = merge_patch(self.maps[name], body)

    def create_namespaced_config_map(self, namespace: str, body: Any) -> None:
        assert body["metadata"]["name"] not in self.maps
        self.maps[body["metadata"]["name"]] = copy.deepcopy(body)

    def data(self, name: str = "fraud-rollout") -> dict[str, str]:
        return dict(self.maps.get(name, {}).get("data", {}))


@dataclass
class Revision:
    name: str
    version: str
    polls_to_ready: int | None
    """Polls left until ready; None: never ready (a crash-looping model server)."""

    @property
    def ready(self) -> bool:
        return self.polls_to_ready == 0


@dataclass(frozen=True)
class Moment:
    """The cluster after one write or poll: what the spec asked and what the route did."""

    cause: str
    canary_traffic_percent: int | None
    latest_created: str
    latest_ready: str
    by_version: dict[str, int]


def _version(containers: list[dict[str, Any]]) -> str:
    args = containers[0]["args"]
    return str(args[args.index("--model-version") + 1])


class FakeKServe:
    """``CustomObjectsApi`` for the InferenceService ``isvc`` (deployed, its first revision ready and rolled out),
    plus ``core`` for ConfigMaps. ``ready_after``: polls a revision of a model version needs to become ready
    (None: never; default 0, ready at once). A poll is one ``advance()`` (the backend's sleep between reads)."""

    def __init__(self, isvc: dict[str, Any], ready_after: dict[str, int | None] | None = None) -> None:
        self.isvc = copy.deepcopy(isvc)
        self.name = isvc["metadata"]["name"]
        self.ready_after = dict(ready_after or {})
        self.core = RecordingConfigMaps()
        self.patches: list[dict[str, Any]] = []
        self.field_managers: list[str | None] = []
        self.moments: list[Moment] = []
        self.revisions: list[Revision] = []
        self.rolled_out = self.previous = ""
        self._create_revision(initial=True)
        self._reconcile("deployed")

    # -- CustomObjectsApi ------------------------------------------------------------------------------------

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        from kubernetes.client.exceptions import ApiException

        if (group, version, plural) == ISVC and name == self.name:
            return copy.deepcopy(self.isvc)
        assert (group, version, plural) == REVISIONS, (group, version, plural)
        for revision in self.revisions:
            if revision.name == name:
                container = {"name": "kserve-container", "args": ["--model-version", revision.version]}
                return {"metadata": {"name": name}, "spec": {"containers": [container]}}
        raise ApiException(status=404, reason="Not Found")

    def patch_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str, body: Any, field_manager: str | None = None
    ) -> None:
        assert (group, version, plural, name) == (*ISVC, self.name)
        self.patches.append(copy.deepcopy(body))
        self.field_managers.append(field_manager)
        before = self.isvc["spec"]["predictor"]["containers"]
        self.isvc = merge_patch(self.isvc, body)
        if self.isvc["spec"]["predictor"]["containers"] != before:  # a new revision template
            self._create_revision()
        self._reconcile(f"patch {body}")

    # -- time ------------------------------------------------------------------------------------------------

    def advance(self, seconds: float = 0.0) -> None:
        """One poll interval passes (usable as the backend's ``sleep``)."""
        for revision in self.revisions:
            if revision.polls_to_ready:
                revision.polls_to_ready -= 1
        self._reconcile("poll")

    def make_ready(self) -> None:
        for revision in self.revisions:
            revision.polls_to_ready = 0
        self._reconcile("ready")

    # -- what KServe and Knative do ----------------------------------------------------------------------------

    def _create_revision(self, initial: bool = False) -> None:
        version = _version(self.isvc["spec"]["predictor"]["containers"])
        polls = 0 if initial else self.ready_after.get(version, 0)
        self.revisions.append(Revision(f"{self.name}-predictor-{len(self.revisions) + 1:05d}", version, polls))

    def _reconcile(self, cause: str) -> None:
        for _ in range(3):  # KServe requeues on its own status change (the rolled-out bookkeeping)
            rolled_out = self.rolled_out
            self._route()
            if self.rolled_out == rolled_out:
                break
        self.moments.append(self._moment(cause))

    def _route(self) -> None:
        latest_created = self.revisions[-1].name
        latest_ready = [r for r in self.revisions if r.ready][-1].name
        share = self.isvc["spec"]["predictor"].get("canaryTrafficPercent")
        if share is not None and self.rolled_out:
            traffic = [{"revisionName": latest_ready, "latestRevision": True, "percent": share}]
            if share < 100:
                prev = {"revisionName": self.rolled_out, "latestRevision": False, "percent": 100 - share, "tag": "prev"}
                traffic.append(prev)
        else:
            traffic = [{"revisionName": latest_ready, "latestRevision": True, "percent": 100}]
        per_revision: dict[str, int] = {}
        for target in traffic:
            per_revision[target["revisionName"]] = per_revision.get(target["revisionName"], 0) + target["percent"]
        for target in traffic:
            if target["revisionName"] != latest_ready or not target["latestRevision"]:
                continue
            if self.rolled_out != latest_ready:
                if target["percent"] == 100:
                    self.previous, self.rolled_out = self.rolled_out, latest_ready
            elif (  # rolled back after 100%: the previous rollout again
                latest_ready == latest_created
                and target["percent"] < 100
                and per_revision.get(latest_ready) == 100
                and self.previous
            ):
                self.rolled_out = self.previous
        self.isvc["status"] = {
            "components": {
                "predictor": {
                    "latestCreatedRevision": latest_created,
                    "latestReadyRevision": latest_ready,
                    "latestRolledoutRevision": self.rolled_out,
                    "previousRolledoutRevision": self.previous,
                    "traffic": traffic,
                }
            }
        }

    def _moment(self, cause: str) -> Moment:
        predictor = self.isvc["status"]["components"]["predictor"]
        versions = {r.name: r.version for r in self.revisions}
        by_version: dict[str, int] = {}
        for target in predictor["traffic"]:
            version = versions[target["revisionName"]]
            by_version[version] = by_version.get(version, 0) + target["percent"]
        return Moment(
            cause,
            self.isvc["spec"]["predictor"].get("canaryTrafficPercent"),
            predictor["latestCreatedRevision"],
            predictor["latestReadyRevision"],
            by_version,
        )
