"""The kind tier, whole product: ``pulumi up`` of the kind stack with the ``fraud`` component through the Automation
API (the program builds the project's images and loads them into kind), then the lifecycle on the cluster:

events produced to ``fraud.events`` -> the FlinkDeployment's window results -> online features in Feast ->
the training pipeline run through the KFP API (twice: a champion, then a challenger) -> the InferenceService
serving the champion -> ``kubectl canary`` start / status / promote against the real InferenceService ->
``pulumi up`` changing nothing after the promotion -> a second canary rolled back, the split pinned until the
reverted revision is ready (``tests.kind.canary_checks``) -> ``pulumi destroy``.

Needs Docker, kind, kubectl and the Pulumi CLI; skips in one line naming what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any

import pytest

from tests.kind import canary_checks
from tests.kind.cluster_helpers import (
    COMPONENT,
    NAMESPACE,
    TIMEOUT_S,
    flink_running,
    missing,
    online_features,
    pipeline_package,
    pipeline_params,
    port_forward,
    read_isvc,
    ready,
    rollout_books,
    run_in_cluster,
    served_version,
    split,
    wait,
)

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


STACK = ("lifecycle", {"components": json.dumps([COMPONENT])})
"""A throw-away kind stack with the fraud component (``tests/kind/conftest.py``)."""


def _canary_command(cluster: dict[str, Any], prometheus: str, mlflow: str, *args: str) -> dict[str, Any]:
    return canary_checks.canary_command(cluster["kubeconfig"], NAMESPACE, prometheus, mlflow, *args)


def _canary(cluster: dict[str, Any], prometheus: str, mlflow: str, *args: str) -> str:
    command = _canary_command(cluster, prometheus, mlflow, *args)
    result = subprocess.run(**command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(result.stdout)


def test_component_lifecycle_on_kind(stack: Any, cluster: dict[str, Any]) -> None:
    outputs = cluster["outputs"]
    assert outputs[f"{COMPONENT}InferenceService"] == f"{NAMESPACE}/{COMPONENT}"

    # Streaming: the operator runs the component's job.
    wait("the Flink job RUNNING", lambda: flink_running(cluster, "features"))

    # Events in, online features out.
    run_in_cluster(
        cluster,
        "produce",
        "import os, time\n"
        "from contract.registry import load\n"
        "from pipelines.streaming.producer import advance_watermark, produce\n"
        f"c = load({COMPONENT!r}); start = int(time.time() * 1000) - 3_600_000\n"
        "events = list(c.generate(20000, start, 7))\n"
        "print('sent', produce(c, os.environ['KAFKA_BOOTSTRAP'], events))\n"
        "advance_watermark(c, os.environ['KAFKA_BOOTSTRAP'], int(time.time() * 1000))\n",
    )
    wait("online features in Feast", lambda: online_features(cluster), 900, 30)

    # Training through the KFP API: a champion (the first version of a model without one), then a challenger (a
    # fresher model as good within tolerance goes to its canary, as the retraining trigger's runs do).
    from pipelines.training.runner import run_cluster

    package, params = pipeline_package(cluster), pipeline_params(cluster)
    with port_forward(cluster["kubeconfig"], "kubeflow", "ml-pipeline", 8888) as kfp:
        assert run_cluster(kfp, params, package, timeout_s=TIMEOUT_S)["state"] == "SUCCEEDED"
        again = dataclasses.replace(params, seed=1, accept_ties=True)
        assert run_cluster(kfp, again, package, timeout_s=TIMEOUT_S)["state"] == "SUCCEEDED"

    # The InferenceService serves the champion.
    wait("the InferenceService Ready", lambda: ready(read_isvc(cluster)))

    # Canary through kubectl against the real InferenceService, then promote.
    with (
        port_forward(cluster["kubeconfig"], "monitoring", "prometheus-server", 80) as prometheus,
        port_forward(cluster["kubeconfig"], "mlflow", "mlflow", 5000) as mlflow,
    ):
        started = _canary(cluster, prometheus, mlflow, "start", COMPONENT, "--share", "10")
        assert "takes 10%" in started
        canaried = read_isvc(cluster)
        assert canaried["spec"]["predictor"]["canaryTrafficPercent"] == 10
        books = rollout_books(cluster)
        canary_version, first_stable = books["canary-version"], books["stable-version"]
        assert served_version(canaried) == canary_version
        wait("traffic split 90/10", lambda: split(cluster) == [10, 90], 600)
        assert "10%" in _canary(cluster, prometheus, mlflow, "status", COMPONENT)
        _canary(cluster, prometheus, mlflow, "promote", COMPONENT)
        promoted = read_isvc(cluster)
        assert rollout_books(cluster)["stable-version"] == canary_version == served_version(promoted)
        assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
        wait("the promoted revision on all traffic", lambda: split(cluster) == [100], 600)

        # The rollout owns the served version and the split (ignoreChanges): `pulumi up` now changes nothing.
        canary_checks.pulumi_up_changes_nothing(stack, lambda: read_isvc(cluster), canary_version)

        # A canary of the replaced version, rolled back: the split stays pinned until the reverted revision is ready.
        _canary(cluster, prometheus, mlflow, "start", COMPONENT, "--version", first_stable, "--share", "10")
        wait("traffic split 90/10 again", lambda: split(cluster) == [10, 90], 600)
        canary_checks.rollback_waits_for_the_reverted_revision(
            cluster["custom"],
            NAMESPACE,
            lambda: read_isvc(cluster),
            _canary_command(cluster, prometheus, mlflow, "rollback", COMPONENT),
            canary_version,
        )
        assert "canary-version" not in rollout_books(cluster)
        shown = _canary(cluster, prometheus, mlflow, "status", COMPONENT)
        assert "rolled back" in shown and "intended" not in shown, shown
