"""The training pipeline on real engines: Feast history -> KFP local runner -> Ray Tune -> MLflow server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from contract.component import ContractError
from contract.registry import load
from local.services import EmbeddedServices
from pipelines.training import dataset
from pipelines.training.registration import CHALLENGER, CHAMPION, holdout_stderr_name, load_profile
from pipelines.training.runner import PipelineFailed, run_local
from pipelines.training.search import SearchSettings, run_search, sample_configs
from pipelines.training.steps import ServiceUnreachable, feature_store, trial_data
from tests.local.conftest import Streamed, Trained

LINEAGE = ("component", "pipeline_run", "data_window", "features", "feature_views", "code_version")


def _client(embedded: EmbeddedServices) -> MlflowClient:
    mlflow.set_tracking_uri(embedded.settings.mlflow_url)  # for the fluent API (models:/ URIs) too
    return MlflowClient(embedded.settings.mlflow_url)


def test_local_run_registers_a_challenger_with_trials_metrics_and_lineage(
    embedded: EmbeddedServices, fraud_trained: Trained
) -> None:
    decision = fraud_trained.run.decision
    assert decision["passed"], decision["reason"]
    assert decision["holdout_score"] > 0.85, "fraud ROC AUC on the holdout"
    client = _client(embedded)
    # The first version of a model without a champion becomes champion (nothing serves to canary it against).
    assert decision["alias"] == (CHAMPION if decision["champion_version"] is None else CHALLENGER)
    version = client.get_model_version_by_alias("fraud", decision["alias"])
    assert version.version == decision["version"]
    for key in LINEAGE:
        assert version.tags[f"mlstack.{key}"], key
    assert version.tags["mlstack.feature_views"].count("@") == 3

    run = client.get_run(version.tags["mlstack.run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(decision["holdout_score"])
    # The holdout score's own noise, which the performance alert weighs beside the live metric's.
    stderr = float(version.tags[holdout_stderr_name("roc_auc")])
    assert stderr == pytest.approx(run.data.metrics[holdout_stderr_name("roc_auc")], abs=1e-6) and 0 < stderr < 0.1
    assert run.data.metrics["rows_holdout"] > 1000
    assert run.data.tags["mlstack.gate"] == "passed"

    trials = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(trials) == fraud_trained.params.trials
    assert all("validation_roc_auc" in t.data.metrics and "learning_rate" in t.data.params for t in trials)
    stopped = [t for t in trials if t.data.tags.get("mlstack.stopped_early") == "true"]
    assert stopped and all(t.info.status == "KILLED" for t in stopped), "ASHA stops some trials early"

    from mlflow.models import get_model_info

    info = get_model_info(f"models:/fraud/{version.version}")
    assert info.signature is not None and "amount" in info.signature.inputs.input_names()
    assert info.saved_input_example_info is not None

    # The version's reference profile: the training rows' request fields and raw features, the holdout's scores.
    profile = load_profile(embedded.settings.mlflow_url, "fraud", version.version)
    assert set(profile.columns) == {"amount", "channel", *profile.features} and len(profile.features) == 12
    assert profile.predictions.rows == run.data.metrics["rows_holdout"]
    assert profile.columns["amount"].rows == run.data.metrics["rows_train"] + run.data.metrics["rows_validation"]


def test_second_run_that_is_not_better_registers_no_alias(embedded: EmbeddedServices, fraud_trained: Trained) -> None:
    client = _client(embedded)
    first = fraud_trained.run.decision["version"]
    client.set_registered_model_alias("fraud", CHAMPION, first)
    versions_before = len(client.search_model_versions("name = 'fraud'"))
    aliases_before = client.get_registered_model("fraud").aliases

    # Same data, same seed: the same model, so no gain over the champion.
    again = run_local(fraud_trained.params, fraud_trained.pipeline_root, progress=print)
    decision = again.decision
    assert not decision["passed"] and decision["version"] is None
    assert "vs champion" in decision["reason"] and decision["champion_version"] == first
    assert len(client.search_model_versions("name = 'fraud'")) == versions_before
    assert client.get_model_version_by_alias("fraud", CHAMPION).version == first
    assert client.get_registered_model("fraud").aliases == aliases_before, "no alias moved"


def test_a_failing_trial_is_reported_and_the_search_completes(
    embedded: EmbeddedServices, fraud_trained: Trained, tmp_path: Path
) -> None:
    component = load("fraud")
    training = dataset.build(
        component, feature_store(fraud_trained.params.feast_repo), fraud_trained.params.offline_root
    )
    for name, frame in training.splits.items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
    data = trial_data("fraud", str(tmp_path / "train.parquet"), str(tmp_path / "validation.parquet"))
    honest_fit = component.model.fit
    settings = SearchSettings(trials=4, concurrency=2)
    leaves = sorted(c["max_leaf_nodes"] for c in sample_configs(component.model.search_space, 4, settings.seed))

    def fit_that_breaks_on_big_trees(
        params: Mapping[str, Any], x: pd.DataFrame, y: np.ndarray, seed: int
    ) -> Iterator[Any]:
        if params["max_leaf_nodes"] >= leaves[-1]:  # the one trial with the most leaves
            raise ValueError("too many leaves for this test")
        yield from honest_fit(params, x, y, seed)

    model = dataclasses.replace(component.model, fit=fit_that_breaks_on_big_trees)
    client = _client(embedded)
    experiment = client.get_experiment_by_name("fraud")
    assert experiment is not None
    parent = client.create_run(experiment.experiment_id, run_name="failing-trial-test")
    result = run_search(
        model,
        data,
        settings,
        embedded.settings.mlflow_url,
        experiment.experiment_id,
        parent.info.run_id,
        tmp_path / "tune",
    )
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(failed) == 1 and "too many leaves for this test" in (failed[0].error or "")
    assert len(result.trials) == 4 and result.best.score is not None
    failed_runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}' and attributes.status = 'FAILED'",
    )
    assert len(failed_runs) == len(failed)
    assert "too many leaves" in failed_runs[0].data.tags["mlstack.error"]


def test_clear_errors_and_an_untouched_registry(embedded: EmbeddedServices, fraud_trained: Trained) -> None:
    client = _client(embedded)
    versions = len(client.search_model_versions("name = 'fraud'"))
    params = fraud_trained.params
    with pytest.raises(ContractError, match="unknown component 'nope'"):
        run_local(dataclasses.replace(params, component="nope"), fraud_trained.pipeline_root)
    with pytest.raises(ServiceUnreachable, match=r"MLflow tracking server at http://127\.0\.0\.1:9 is unreachable"):
        run_local(dataclasses.replace(params, mlflow_uri="http://127.0.0.1:9"), fraud_trained.pipeline_root)
    with pytest.raises(ServiceUnreachable, match="no Feast repo at /nowhere"):
        run_local(dataclasses.replace(params, feast_repo="/nowhere"), fraud_trained.pipeline_root)
    future = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).isoformat()
    with pytest.raises(PipelineFailed, match=r"failed at step training-set: .*training window .* holds no examples"):
        run_local(dataclasses.replace(params, window_start=future), fraud_trained.pipeline_root)
    assert len(client.search_model_versions("name = 'fraud'")) == versions


def test_training_window_limits_the_examples(fraud_streamed: Streamed, fraud_trained: Trained) -> None:
    fraud = load("fraud")
    events = fraud_streamed.events
    transactions = pd.to_datetime([e["event_time"] for e in events if e["kind"] == "transaction"], unit="ms", utc=True)
    middle = transactions[len(transactions) // 2]
    rows = dataset.examples(fraud, fraud_trained.params.offline_root, dataset.DataWindow(start=middle))
    assert rows["event_timestamp"].min() >= middle
    # Every transaction from the middle on that is older than the longest verdict delay at the newest event (the
    # cutoff of an open window) has its verdict by then; the younger ones wait for theirs.
    newest = pd.Timestamp(events[-1]["event_time"], unit="ms", tz="UTC")
    feedback = fraud.streaming.feedback
    assert feedback is not None
    settled = newest - pd.Timedelta(seconds=feedback.max_delay_s)
    assert len(rows) == sum((transactions >= middle) & (transactions <= settled))
    verdicts = {e["transaction_id"]: e["is_fraud"] for e in events if e["kind"] == "resolution"}
    assert list(rows["is_fraud"]) == [verdicts[t] for t in rows["transaction_id"]]
