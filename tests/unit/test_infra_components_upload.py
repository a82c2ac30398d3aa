"""Per-component Jobs under ``pulumi.runtime.Mocks``: Pulumi never undoes a rollout and re-runs the Jobs when they
change; the training pipeline's upload is named by content, idempotent, and keeps one schedule (split from
``test_infra_components.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra.use_cases import pipeline_upload
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config


def test_pipeline_upload_version_is_named_by_content() -> None:
    a = pipeline_upload.version_name("mlstack-training-fraud", b"one")
    assert a == pipeline_upload.version_name("mlstack-training-fraud", b"one")
    assert a != pipeline_upload.version_name("mlstack-training-fraud", b"two")
    flags = ["--host", "h", "--package", "p", "--component", "fraud", "--mlflow-uri", "m", "--feast-repo", "f"]
    args = pipeline_upload.parse([*flags, "--offline-root", "o"])
    assert args.schedule == "" and args.component == "fraud"


class _OptionsMonitor(mocks.RecordingMonitor):
    """Also records each registration's ``ignoreChanges`` and ``replaceOnChanges`` options."""

    def __init__(self) -> None:
        super().__init__(mocks.PlatformMocks())
        self.options: dict[str, tuple[list[str], list[str]]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.options[request.name] = (list(request.ignoreChanges), list(request.replaceOnChanges))
        return super().RegisterResource(request)


def test_pulumi_never_undoes_a_rollout_and_jobs_rerun_on_change() -> None:
    monitor = _OptionsMonitor()
    mocks.run({**stack_config("kind"), "components": json.dumps(["fraud"])}, monitor=monitor)
    ignored, _ = monitor.options["fraud-isvc"]
    # kubectl canary patches these (serving/rollout/cluster_backend.py); everything else stays Pulumi's.
    # (test_infra_rollout_ownership.py checks that the provider can honour these under server-side apply)
    assert set(ignored) == {"spec.predictor.canaryTrafficPercent", "spec.predictor.containers"}
    assert monitor.options["fraud-flink"] == ([], [])
    for job in ("fraud-feast-apply", "fraud-pipeline-upload"):
        assert monitor.options[job][1] == ["*"], job


class _FakeKfp:
    """The part of ``kfp.Client`` the uploader calls, with server state in memory."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.pipelines: dict[str, str] = {}
        self.versions: dict[str, list[SimpleNamespace]] = {}
        self.recurring: list[SimpleNamespace] = []

    def list_experiments(self, page_size: int) -> None:
        return None

    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipelines.get(name)

    def upload_pipeline(self, path: str, pipeline_name: str) -> SimpleNamespace:
        self.pipelines[pipeline_name] = f"id-{pipeline_name}"
        self.versions[f"id-{pipeline_name}"] = [SimpleNamespace(display_name=pipeline_name, pipeline_version_id="v0")]
        return SimpleNamespace(pipeline_id=f"id-{pipeline_name}")

    def list_pipeline_versions(self, pipeline_id: str, page_size: int) -> SimpleNamespace:
        return SimpleNamespace(pipeline_versions=list(self.versions[pipeline_id]))

    def upload_pipeline_version(self, path: str, pipeline_version_name: str, pipeline_id: str) -> SimpleNamespace:
        version = SimpleNamespace(display_name=pipeline_version_name, pipeline_version_id=f"v{len(self.versions)}")
        self.versions[pipeline_id].append(version)
        return version

    def create_experiment(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(experiment_id="exp")

    def list_recurring_runs(self, experiment_id: str) -> SimpleNamespace:
        return SimpleNamespace(recurring_runs=list(self.recurring))

    def delete_recurring_run(self, recurring_run_id: str) -> None:
        self.recurring = [r for r in self.recurring if r.recurring_run_id != recurring_run_id]

    def create_recurring_run(self, **kwargs: Any) -> None:
        self.recurring.append(SimpleNamespace(display_name=kwargs["job_name"], recurring_run_id="r", **kwargs))


def test_pipeline_upload_is_idempotent_and_keeps_one_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _FakeKfp("http://kfp")
    monkeypatch.setitem(sys.modules, "kfp", SimpleNamespace(Client=lambda host: server))
    package = tmp_path / "pipeline.yaml"
    package.write_text("pipelineInfo: {name: mlstack-training}\n")
    argv = ["--host", "http://kfp", "--package", str(package), "--component", "fraud", "--mlflow-uri", "m"]
    argv += ["--feast-repo", "/opt/mlstack/feast", "--offline-root", "s3://b/fraud", "--schedule", "0 0 3 * * *"]
    for _ in range(2):  # the Job re-runs (a retry, or `pulumi up` replacing it): nothing new is uploaded
        assert pipeline_upload.main(argv) == 0
    versions = [v.display_name for v in server.versions["id-mlstack-training-fraud"]]
    content_named = pipeline_upload.version_name("mlstack-training-fraud", package.read_bytes())
    assert versions.count(content_named) == 1
    (schedule,) = server.recurring
    assert schedule.cron_expression == "0 0 3 * * *" and schedule.params["component"] == "fraud"
    assert schedule.version_id == next(
        v.pipeline_version_id for v in server.versions["id-mlstack-training-fraud"] if v.display_name == content_named
    )
    package.write_text("pipelineInfo: {name: mlstack-training, changed: true}\n")
    assert pipeline_upload.main(argv) == 0
    assert len(server.versions["id-mlstack-training-fraud"]) == 3 and len(server.recurring) == 1
