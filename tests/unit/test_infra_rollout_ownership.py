"""`pulumi up` after a rollout changes nothing: under ``pulumi.runtime.Mocks`` the InferenceService is registered
with ignoreChanges paths the Kubernetes provider can honour under server-side apply (map keys only: its
``handleSSAIgnoreFields`` splits a path on "." and walks maps, so ``containers[0].args`` matches nothing and the
atomic ``containers`` list goes out whole), covering every field ``kubectl canary`` patches, with nothing that
would force Pulumi's apply over the rollout's fields (see ``infra.use_cases.use_case.ROLLOUT_OWNED``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.use_cases.use_case import ROLLOUT_OWNED
from serving.inference_service import inference_service
from serving.rollout.cluster_backend import ClusterBackend
from tests.support import pulumi_mocks as mocks
from tests.unit.kserve_fake import FakeKServe
from tests.unit.test_infra_config import stack_config
from tests.unit.test_rollout import CannedPrometheus


class _IgnoreMonitor(mocks.RecordingMonitor):
    """Also records each registration's ``ignoreChanges``."""

    def __init__(self) -> None:
        super().__init__(mocks.PlatformMocks())
        self.ignored: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.ignored[request.name] = list(request.ignoreChanges)
        return super().RegisterResource(request)


@pytest.fixture(scope="module")
def program() -> tuple[mocks.Run, _IgnoreMonitor]:
    monitor = _IgnoreMonitor()
    run = mocks.run({**stack_config("kind"), "components": json.dumps(["fraud"])}, monitor=monitor)
    return run, monitor


def _rollout_patched_paths() -> set[str]:
    """Every ``spec.predictor`` field the cluster backend patches in a start, a step, a rollback and a promotion."""
    resources = {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    from contract.registry import load

    isvc = inference_service(load("fraud"), "mlstack", "img", "1", "http://mlflow", "/feast", resources)
    api = FakeKServe(isvc)
    backend = ClusterBackend(api, api.core, "mlstack", "fraud", CannedPrometheus(), lambda: "1", sleep=api.advance)
    backend.start_canary("2", 10)
    backend.set_share(50)
    backend.rollback()
    backend.start_canary("3", 10)
    backend.promote()
    return {f"spec.predictor.{key}" for patch in api.patches for key in patch["spec"]["predictor"]}


def test_the_rollout_owns_exactly_what_it_patches_and_pulumi_ignores_it(program: Any) -> None:
    run, monitor = program
    ignored = monitor.ignored["fraud-isvc"]
    assert set(ignored) == set(ROLLOUT_OWNED) == _rollout_patched_paths()
    # Pulumi still creates the fields it then leaves alone: the containers are in what it registers.
    predictor = run.named("fraud-isvc").inputs["spec"]["predictor"]
    assert predictor["containers"][0]["image"] and "canaryTrafficPercent" not in predictor


def test_every_ignore_path_is_one_the_provider_honours_under_server_side_apply(program: Any) -> None:
    run, monitor = program
    for name, paths in monitor.ignored.items():
        for path in paths:
            assert "[" not in path and "]" not in path, f"{name}: {path} indexes an array (ignored under SSA)"
    isvc = run.named("fraud-isvc").inputs
    for path in ROLLOUT_OWNED:
        *parents, _ = path.split(".")
        node = isvc
        for key in parents:
            node = node[key]
            assert isinstance(node, dict), f"{path}: {key} is not a map"


def test_nothing_forces_pulumi_over_the_rollout(program: Any) -> None:
    run, _ = program
    annotations = run.named("fraud-isvc").inputs["metadata"].get("annotations", {})
    assert "pulumi.com/patchForce" not in annotations
    providers = run.of_type("pulumi:providers:kubernetes")
    assert providers and all(p.inputs.get("enableServerSideApply") in (True, "true") for p in providers)
    assert not any(p.inputs.get("enablePatchForce") in (True, "true") for p in providers)
