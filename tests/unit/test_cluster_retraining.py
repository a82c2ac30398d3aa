"""The retraining trigger's cluster launcher (infra/use_cases/cluster_retraining.py): a KFP run with the cause as its
reason, waited for; the version its gate registered found by the run's name; that version's canary on the
InferenceService, to its end. There is no KFP API server here: the runs are a fake of our own ``PipelineRuns``;
the registry is a real MLflow (SQLite), the rollout the real one on ``tests.unit.kserve_fake`` and canned counters
that grow each window."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from contract.registry import load
from infra.use_cases import cluster_retraining as launcher
from infra.use_cases.cluster_retraining import ClusterOptions, ClusterRetrainer, RunTemplate, run_name
from infra.use_cases.pipeline_upload import PIPELINE_PREFIX
from monitoring.retrain_trigger import Cause, Trigger
from pipelines.training import kfp_runs
from serving.inference_service import inference_service
from serving.rollout.analysis import AnalysisConfig, Snapshot
from serving.rollout.cluster_backend import ClusterBackend, PrometheusReader
from serving.rollout.rollout import RolloutConfig
from tests.unit.kserve_fake import FakeKServe
from tests.unit.test_rollout import window

pytestmark = pytest.mark.unit

CAUSE = Cause("alert", "FeatureDrift: PSI 0.41 for fraud v1 feature amount", "2027-01-15T08:00:05Z",
              {"alertname": "FeatureDrift", "component": "fraud", "reason": "drift"})  # fmt: skip
TEMPLATE = RunTemplate("http://mlflow:5000", "/opt/mlstack/feast", "s3://mlstack-features/{component}")


class FakeRuns:
    """``PipelineRuns``: records each start; the run then reports the given states, one per poll."""

    def __init__(self, states: list[str], registers: tuple[MlflowClient, str] | None = None) -> None:
        self.states, self.registers = states, registers
        self.started: list[tuple[str, dict[str, Any], str]] = []

    def start(self, component: str, params: dict[str, Any], name: str) -> str:
        self.started.append((component, params, name))
        return "run-7"

    def state(self, run_id: str) -> str:
        assert run_id == "run-7"
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if state == "SUCCEEDED" and self.registers is not None:  # the gate registers, tagging the run's name
            registry, component = self.registers
            name = self.started[-1][2]
            registry.create_model_version(component, source="/tmp", tags={"mlstack.pipeline_run": name})
            self.registers = None
        return state


class GrowingPrometheus(PrometheusReader):
    """Both versions take healthy traffic: every read is another window's worth of requests."""

    def __init__(self) -> None:
        super().__init__("http://prometheus.invalid")
        self.reads: dict[str, int] = {}

    def snapshot(self, component: str, version: str) -> Snapshot:
        self.reads[version] = self.reads.get(version, 0) + 1
        return window(500 * self.reads[version])


def _retrainer(registry: MlflowClient, runs: FakeRuns) -> tuple[ClusterRetrainer, FakeKServe]:
    isvc = inference_service(
        load("fraud"), "mlstack", "registry.local/serving:abc", "1", "http://mlflow", "/feast/fraud",
        {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    )  # fmt: skip
    api = FakeKServe(isvc)

    def backend_for(component: str) -> ClusterBackend:
        def champion() -> str:
            return str(registry.get_model_version_by_alias(component, "champion").version)

        return ClusterBackend(api, api.core, "mlstack", component, GrowingPrometheus(), champion)

    config = RolloutConfig(analysis=AnalysisConfig(min_requests=50), warmup_requests=0)
    retrainer = ClusterRetrainer(
        runs, registry, backend_for, TEMPLATE, window_s=0.0, rollout=config, sleep=lambda _: None
    )
    return retrainer, api


def _served(api: FakeKServe) -> str:
    args = api.isvc["spec"]["predictor"]["containers"][0]["args"]
    return str(args[args.index("--model-version") + 1])


def test_a_run_that_registers_a_version_canaries_it_to_promotion(registry: MlflowClient) -> None:
    runs = FakeRuns(["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"], registers=(registry, "fraud"))
    retrainer, api = _retrainer(registry, runs)
    lines: list[str] = []
    result = retrainer.retrain("fraud", CAUSE, lines.append)
    ((component, params, name),) = runs.started
    assert component == "fraud" and name == "retrain-fraud-20270115T080005Z-alert" == run_name("fraud", CAUSE)
    assert json.loads(params["reason"]) == json.loads(CAUSE.to_json()), "the cause goes to training as its reason"
    assert params["offline_root"] == "s3://mlstack-features/fraud" and params["accept_ties"] is True
    assert "ray_address" not in params
    assert result.run_id == "run-7" and result.version == "4" and result.outcome == "promoted"
    assert _served(api) == "4" and str(registry.get_model_version_by_alias("fraud", "champion").version) == "4"
    states = [line for line in lines if line.startswith("KFP run run-7:")]
    assert states == ["KFP run run-7: pending", "KFP run run-7: running", "KFP run run-7: succeeded"], "once each"


def test_a_failed_run_starts_no_canary(registry: MlflowClient) -> None:
    retrainer, api = _retrainer(registry, FakeRuns(["RUNNING", "FAILED"]))
    before = json.dumps(api.isvc, sort_keys=True)
    result = retrainer.retrain("fraud", CAUSE, lambda _: None)
    assert (result.run_id, result.version) == ("run-7", "")
    assert result.outcome == "failed: KFP run retrain-fraud-20270115T080005Z-alert ended failed"
    assert json.dumps(api.isvc, sort_keys=True) == before and not api.patches


def test_a_run_whose_gate_kept_the_champion_registers_nothing_to_canary(registry: MlflowClient) -> None:
    # Another run's version carries another name: it is not this run's.
    registry.create_model_version("fraud", source="/tmp", tags={"mlstack.pipeline_run": "retrain-fraud-earlier"})
    retrainer, api = _retrainer(registry, FakeRuns(["SUCCEEDED"]))
    result = retrainer.retrain("fraud", CAUSE, lambda _: None)
    assert result.version == "" and result.outcome.startswith("not registered:")
    assert not api.patches


def test_a_first_version_registered_as_champion_gets_no_canary(registry: MlflowClient) -> None:
    """A run on a model without a champion: the gate makes its version champion (nothing serves to canary it
    against), and the trigger leaves the InferenceService alone."""
    registry.delete_registered_model_alias("fraud", "champion")

    class FirstRun(FakeRuns):
        def state(self, run_id: str) -> str:
            state = super().state(run_id)
            if state == "SUCCEEDED":
                first = registry.search_model_versions(
                    "name = 'fraud' and tags.`mlstack.pipeline_run` LIKE 'retrain-%'"
                )
                registry.set_registered_model_alias("fraud", "champion", first[0].version)
            return state

    retrainer, api = _retrainer(registry, FirstRun(["SUCCEEDED"], registers=(registry, "fraud")))
    result = retrainer.retrain("fraud", CAUSE, lambda _: None)
    assert result.version == "4" and result.outcome == "registered as champion: the model had none, so no canary"
    assert not api.patches


def test_a_run_that_does_not_end_in_time_is_a_failed_outcome(registry: MlflowClient) -> None:
    retrainer, api = _retrainer(registry, FakeRuns(["RUNNING"]))
    retrainer.run_timeout_s = 0.0
    result = retrainer.retrain("fraud", CAUSE, lambda _: None)
    assert result.outcome.startswith("failed: KFP run run-7 did not finish within 0s (last state RUNNING)")
    assert not api.patches


def test_the_trigger_logs_the_cluster_runs_outcome(registry: MlflowClient, tmp_path: Path) -> None:
    runs = FakeRuns(["SUCCEEDED"], registers=(registry, "fraud"))
    retrainer, _ = _retrainer(registry, runs)
    trigger = Trigger(retrainer, tmp_path / "decisions.jsonl", progress=lambda _: None)
    assert trigger.on_request("fraud", "new merchants since Monday").action == "started"
    assert trigger.wait_idle(60)
    finished = trigger.decisions("fraud")[-1]
    assert (finished.action, finished.run_id, finished.version, finished.detail) == (
        "finished",
        "run-7",
        "4",
        "promoted",
    )
    assert json.loads(runs.started[0][1]["reason"])["summary"] == "new merchants since Monday"


def test_the_pipeline_name_is_the_one_the_upload_job_gives() -> None:
    assert kfp_runs.PIPELINE_PREFIX == PIPELINE_PREFIX
    assert kfp_runs.pipeline_name("fraud") == f"{PIPELINE_PREFIX}-fraud"


def test_the_shipped_program_imports_only_what_the_pipeline_image_holds() -> None:
    tree = ast.parse(Path(launcher.__file__).read_text())
    roots = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not roots & {"infra", "local", "cli", "devtools", "components"}, roots
    assert {"monitoring", "pipelines", "serving"} <= roots


def test_options_refuse_what_would_fail_later(tmp_path: Path) -> None:
    args = ["--kfp-host", "http://ml-pipeline.kubeflow:8888", "--mlflow-uri", "http://mlflow:5000",
            "--prometheus", "http://prometheus-server.monitoring", "--namespace", "mlstack",
            "--feast-repo", "/opt/mlstack/feast", "--offline-root", "s3://b/{component}",
            "--log", str(tmp_path / "d.jsonl")]  # fmt: skip
    options = launcher.parse(args)
    assert (
        options.on_alerts
        and options.port == 8080
        and options.template.params("demand", CAUSE, True)["offline_root"] == "s3://b/demand"
    )
    with pytest.raises(ValueError, match="kfp host 'ml-pipeline:8888' is not an http"):
        launcher.parse([*args, "--kfp-host", "ml-pipeline:8888"])
    with pytest.raises(ValueError, match="components' namespace"):
        ClusterOptions("http://k", "http://m", "http://p", "", TEMPLATE, tmp_path / "d.jsonl")
