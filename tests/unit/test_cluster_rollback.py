"""The cluster backend against KServe's and Knative's real timing (``tests.unit.kserve_fake``): a rollback keeps the
canary at 0% until the reverted revision is the latest ready one, then drops ``canaryTrafficPercent``; it gives up
after its timeout naming the revision, with the canary still at 0%; a rollout starts and steps only on the split
the InferenceService reports; ``kubectl canary status`` shows that split.

Why it matters (KServe v0.16.0, ``createKnativeService``): without ``canaryTrafficPercent`` the route sends 100% to
``latestRevision``, which Knative resolves to the latest *ready* revision, the rejected canary until the reverted
revision is ready."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from cli import kubectl_canary as kubectl_plugin
from contract.registry import load
from serving.inference_service import inference_service
from serving.rollout.analysis import AnalysisConfig
from serving.rollout.cluster_backend import CANARY, FIELD_MANAGER, ClusterBackend, RevisionNotReady
from serving.rollout.rollout import Rollout, RolloutConfig, RolloutError
from tests.unit.kserve_fake import FakeKServe
from tests.unit.test_rollout import CannedPrometheus, window

POLL_S, TIMEOUT_S = 5.0, 60.0


def _service(version: str = "1") -> dict[str, Any]:
    resources = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    return inference_service(
        load("fraud"), "mlstack", "registry.local/serving:abc", version, "http://mlflow", "/feast/fraud", resources
    )


def _backend(api: FakeKServe, prometheus: CannedPrometheus | None = None) -> ClusterBackend:
    return ClusterBackend(
        api,
        api.core,
        "mlstack",
        "fraud",
        prometheus or CannedPrometheus(),
        lambda: "1",
        ready_timeout_s=TIMEOUT_S,
        poll_s=POLL_S,
        sleep=api.advance,
    )


def _unpinned_while_unsettled(api: FakeKServe) -> list[str]:
    """Moments since the rollback began with no ``canaryTrafficPercent`` while the latest created revision was
    not the latest ready one (``latestRevision`` then meant an older revision: the canary)."""
    began = next(i for i, m in enumerate(api.moments) if m.canary_traffic_percent == 0)
    return [
        f"{m.cause}: latest ready {m.latest_ready}, created {m.latest_created}"
        for m in api.moments[began:]
        if m.canary_traffic_percent is None and m.latest_ready != m.latest_created
    ]


def _canary_traffic_after_rollback_began(api: FakeKServe, canary: str) -> list[int]:
    began = next(i for i, m in enumerate(api.moments) if m.canary_traffic_percent == 0)
    return [m.by_version.get(canary, 0) for m in api.moments[began:]]


def _started(api: FakeKServe, backend: ClusterBackend, share: int = 10) -> None:
    backend.start_canary("2", share)
    api.make_ready()
    assert backend.split_pending(share) == "" and backend.reported_traffic() == {"1": 100 - share, "2": share}


def test_rollback_waits_for_the_reverted_revision_before_dropping_the_split() -> None:
    api = FakeKServe(_service(), ready_after={"1": 3})  # the reverted revision needs three polls
    backend = _backend(api)
    _started(api, backend)
    polls = len([m for m in api.moments if m.cause == "poll"])
    backend.rollback()
    assert _unpinned_while_unsettled(api) == []
    assert set(_canary_traffic_after_rollback_began(api, "2")) == {0}, "the rejected canary never got traffic back"
    assert api.patches[1:] == [
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
        {"spec": {"predictor": {"containers": api.patches[2]["spec"]["predictor"]["containers"]}}},
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
    ]
    assert "--model-version" in (args := api.patches[2]["spec"]["predictor"]["containers"][0]["args"])
    assert args[args.index("--model-version") + 1] == "1"
    assert len([m for m in api.moments if m.cause == "poll"]) - polls == 3, "waited exactly until it was ready"
    assert backend.reported_traffic() == {"1": 100} and CANARY not in api.core.data()
    assert set(api.field_managers) == {FIELD_MANAGER}


def test_rollback_gives_up_naming_the_revision_and_leaves_the_canary_at_zero() -> None:
    api = FakeKServe(_service(), ready_after={"1": None})  # the reverted revision never becomes ready
    backend = _backend(api)
    _started(api, backend)
    with pytest.raises(
        RevisionNotReady, match=r"revision fraud-predictor-00003 \(v1\) did not become ready within 60s"
    ):
        backend.rollback()
    assert len(api.patches) == 3, "no patch after the revert (start, 0%, the stable version)"
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert set(_canary_traffic_after_rollback_began(api, "2")) == {0}
    assert backend.reported_traffic() == {"2": 0, "1": 100}
    assert backend.split_pending(None).startswith("revision fraud-predictor-00003 is not ready")

    api.make_ready()  # fixed by hand (an image pull that finally worked): the rollback again finishes the job
    backend.rollback()
    assert api.patches[3:] == [
        {"spec": {"predictor": {"canaryTrafficPercent": 0}}},
        {"spec": {"predictor": {"canaryTrafficPercent": None}}},
    ], "the containers were already reverted: no second revision"
    assert _unpinned_while_unsettled(api) == [] and backend.reported_traffic() == {"1": 100}


def test_rollback_from_a_full_canary_goes_back_to_the_previous_rollout() -> None:
    # At 100% KServe counts the canary as rolled out; at 0% it returns to the previous rolled-out revision.
    api = FakeKServe(_service(), ready_after={"1": 2})
    backend = _backend(api)
    _started(api, backend, share=50)
    backend.set_share(100)
    assert api.isvc["status"]["components"]["predictor"]["latestRolledoutRevision"] == "fraud-predictor-00002"
    backend.rollback()
    assert _unpinned_while_unsettled(api) == []
    assert set(_canary_traffic_after_rollback_began(api, "2")) == {0}
    assert backend.reported_traffic() == {"1": 100}


def test_start_and_steps_follow_the_split_the_service_reports(
    registry: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, prometheus = FakeKServe(_service(), ready_after={"2": 2, "1": None}), CannedPrometheus()
    rollout = Rollout(
        _backend(api, prometheus), registry, RolloutConfig(analysis=AnalysisConfig(min_requests=50), warmup_requests=0)
    )
    rollout.start()
    prometheus.counters = {"1": window(1000), "2": window(200)}
    action, result = rollout.step()
    assert action == "waiting" and "fraud-predictor-00002 is not ready" in result.summary
    assert len(api.patches) == 1, "no step up while the canary's revision serves nothing"

    monkeypatch.setattr(kubectl_plugin, "rollout_for", lambda component, config=None: rollout)
    monkeypatch.setattr(kubectl_plugin, "console", Console(width=200))  # one table row per line
    shown = CliRunner().invoke(kubectl_plugin.app, ["status", "fraud"])
    assert shown.exit_code == 0, shown.output
    assert "0% (intended 10%)" in shown.output and "100% (intended 90%)" in shown.output
    assert "reported by the InferenceService: v1 100%" in shown.output

    api.advance()
    api.advance()
    action, _ = rollout.step()
    assert action == "waiting", "the window restarts once the split is real"
    prometheus.counters = {"1": window(2000), "2": window(400)}
    action, _ = rollout.step()
    assert action == "stepped to 25%"

    # A rollback whose reverted revision never gets ready: the error names it; the state still says 25% and the
    # status shows what really happens; a new rollout cannot start on top of it.
    with pytest.raises(RevisionNotReady, match="fraud-predictor-00003"):
        rollout.rollback()
    shown = CliRunner().invoke(kubectl_plugin.app, ["status", "fraud"])
    assert "0% (intended 25%)" in shown.output and "v2 0%" in shown.output, shown.output
    monkeypatch.setattr(rollout, "state", lambda: None)
    with pytest.raises(RolloutError, match="not settled for a canary: revision fraud-predictor-00003 is not ready"):
        rollout.start()
