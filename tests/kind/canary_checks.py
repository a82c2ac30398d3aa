"""Checks of the kind tier's lifecycle test after a canary has been promoted on the real InferenceService:

- ``pulumi up`` then changes nothing: after a refresh the preview plans no step other than ``same``, the update
  runs with ``expect_no_changes``, the service keeps the promoted version and revision, and the rollout's field
  manager still owns the containers (``infra.use_cases.use_case.ROLLOUT_OWNED``);
- a rollback keeps ``canaryTrafficPercent`` while the reverted revision is not ready, watched from outside by
  sampling the InferenceService while ``kubectl canary rollback`` runs, and ends with the stable version on all
  traffic (``serving.rollout.cluster_backend``).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.rollout.cluster_backend import FIELD_MANAGER, REVISIONS, PredictorStatus

ROOT = Path(__file__).resolve().parents[2]


def canary_command(kubeconfig: Path, namespace: str, prometheus: str, mlflow: str, *args: str) -> dict[str, Any]:
    """``kubectl-canary`` as an operator runs it against the kind cluster: arguments and environment."""
    cli = ROOT / ".venv" / "bin" / "kubectl-canary"
    env = {
        "KUBECONFIG": str(kubeconfig),
        "MLSTACK_PROMETHEUS_URL": prometheus,
        "PATH": str(ROOT / ".venv" / "bin"),
        "COLUMNS": "200",  # rich's table width: one row per line for the assertions on `status`
    }
    return {"args": [str(cli), "--namespace", namespace, "--mlflow-uri", mlflow, *args], "env": env}


def pulumi_up_changes_nothing(stack: Any, isvc: Callable[[], dict[str, Any]], promoted_version: str) -> None:
    """After a promoted canary: no planned change, an update that changes nothing, the rollout left in place."""
    from pulumi.automation import OpType

    before = isvc()
    planned: list[str] = []

    def record(event: Any) -> None:
        step = event.resource_pre_event
        if step and step.metadata.op not in (OpType.SAME, OpType.READ):
            planned.append(f"{step.metadata.op.value} {step.metadata.urn} {step.metadata.diffs}")

    # Refresh first: the state then holds the live object, the rollout's containers included, so the preview
    # diffs against what the rollout made of it, not against what Pulumi last applied.
    stack.refresh(on_output=print)
    stack.preview(on_event=record)
    assert planned == [], planned
    result = stack.up(expect_no_changes=True, on_output=print)
    assert set(result.summary.resource_changes or {}) <= {"same"}, result.summary.resource_changes

    after = isvc()
    assert _served(after) == promoted_version == _served(before)
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]
    created = PredictorStatus.of(after).latest_created
    assert created == PredictorStatus.of(before).latest_created, "no new revision"
    owners = [
        m["manager"]
        for m in after["metadata"].get("managedFields", [])
        if "f:containers" in m.get("fieldsV1", {}).get("f:spec", {}).get("f:predictor", {})
    ]
    assert owners == [FIELD_MANAGER], f"the containers' owners: {owners}"


@dataclass(frozen=True)
class Sample:
    at: float
    canary_traffic_percent: int | None
    status: PredictorStatus


def rollback_waits_for_the_reverted_revision(
    custom: Any, namespace: str, isvc: Callable[[], dict[str, Any]], command: dict[str, Any], stable: str
) -> None:
    """Run ``kubectl canary rollback`` while sampling the InferenceService every half second."""
    samples: list[Sample] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            obj = isvc()
            share = obj["spec"]["predictor"].get("canaryTrafficPercent")
            samples.append(Sample(time.monotonic(), share, PredictorStatus.of(obj)))
            time.sleep(0.5)

    canary_revision = PredictorStatus.of(isvc()).latest_created
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = subprocess.run(**command, capture_output=True, text=True, check=False, timeout=900)
    finally:
        done.set()
        watcher.join(timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr

    unpinned = [s for s in samples if s.canary_traffic_percent is None and not s.status.settled]
    assert unpinned == [], f"canaryTrafficPercent gone while the latest revision was not ready: {unpinned[:3]}"
    began = next(i for i, s in enumerate(samples) if s.canary_traffic_percent == 0)
    canary_shares = {sum(p for r, p in s.status.traffic if r == canary_revision) for s in samples[began:]}
    assert canary_shares == {0}, f"the rejected canary {canary_revision} got traffic back: {canary_shares}"
    waited = [s for s in samples if s.canary_traffic_percent == 0 and not s.status.settled]
    assert waited, "the reverted revision was never seen unready at 0%: the rollback did not have to wait"

    final = PredictorStatus.of(isvc())
    assert final.settled and [p for _, p in final.traffic] == [100], final
    revision = custom.get_namespaced_custom_object(*REVISIONS[:2], namespace, REVISIONS[2], final.latest_ready)
    args = revision["spec"]["containers"][0]["args"]
    assert args[args.index("--model-version") + 1] == stable, "all traffic on a revision of the stable version"


def _served(obj: dict[str, Any]) -> str:
    from serving.inference_service import served_version

    return served_version(obj)
