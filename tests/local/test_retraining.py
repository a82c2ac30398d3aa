"""The retraining trigger as a user reaches it: ``mlstack retrain fraud --reason ...`` asks the supervised ``retrain``
service, which runs the real training pipeline (the KFP local runner on the streamed fraud features, MLflow) with
the reason, logs the run's start and end, records why on the MLflow run and the version the gate registers, and
refuses a second run beside the first. Fraud is not served yet at this point of the tier (test_serving comes
later), so the run ends with no canary, and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from mlflow import MlflowClient

from local.services import EmbeddedServices
from pipelines.training.lineage import REASON
from tests.conftest import settings_env
from tests.local.conftest import Trained

pytestmark = pytest.mark.local

RUN_TIMEOUT_S = 600


def mlstack(services: EmbeddedServices, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(services.settings)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def decisions(services: EmbeddedServices) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{services.settings.retrain_url}/decisions?component=fraud", timeout=10) as reply:
        found: list[dict[str, Any]] = json.loads(reply.read())
        return found


def test_mlstack_retrain_runs_the_pipeline_through_the_trigger_and_records_why(
    embedded: EmbeddedServices, fraud_trained: Trained
) -> None:
    started = mlstack(embedded, "retrain", "fraud", "--reason", "new merchants onboarded")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "fraud: started: new merchants onboarded" in started.stdout

    beside = mlstack(embedded, "retrain", "fraud", "--reason", "again")
    assert beside.returncode == 1 and "under way (one at a time)" in beside.stdout, beside.stdout + beside.stderr

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(d["action"] == "finished" for d in decisions(embedded)):
        assert time.monotonic() < deadline, f"no run ended in {RUN_TIMEOUT_S}s: {decisions(embedded)}"
        time.sleep(3)
    finished = decisions(embedded)[-1]
    assert [d["action"] for d in decisions(embedded)] == ["started", "skipped", "finished"]
    assert finished["cause"] == "manual"

    if finished["version"]:  # the gate registered it: why is on the version and its run
        assert finished["detail"].startswith("no canary: fraud is not being served"), finished
        version = MlflowClient(embedded.settings.mlflow_url).get_model_version("fraud", finished["version"])
        reason = json.loads(version.tags[REASON])
        assert (reason["source"], reason["summary"]) == ("manual", "new merchants onboarded")
        run = MlflowClient(embedded.settings.mlflow_url).get_run(finished["run_id"])
        assert json.loads(run.data.tags[REASON]) == reason
    else:
        assert finished["detail"].startswith("not registered: "), finished

    listed = mlstack(embedded, "trigger", "decisions", "fraud")
    assert listed.returncode == 0 and "finished (manual)" in listed.stdout, listed.stdout + listed.stderr
