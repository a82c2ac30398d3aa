"""What each task of the training pipeline does, as plain functions of plain arguments: the KFP components
in ``pipeline.py`` are thin shells around these, so the same code runs in the local runner, in the cluster and
in tests. Every step marks the pipeline's MLflow run FAILED when it fails, so a broken run never looks live."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from contract.model import EVENT_TIMESTAMP
from contract.registry import load
from pipelines.training import dataset, lineage
from pipelines.training.registration import evaluate_and_register
from pipelines.training.search import SearchSettings, TrialData, best_stage_model, describe, run_search

STEP_NICENESS = "MLSTACK_STEP_NICENESS"
"""Environment variable: how much a step lowers its CPU priority before its work (the local runner sets it; its
Ray workers inherit the priority)."""
WITHOUT_VALUES_TAG = "mlstack.inputs_without_values"
"""The run's tag naming model inputs with no value in any training row (``search.fittable``)."""

Progress = Callable[[str], None]


def yield_cpu() -> int:
    """Lower this process's CPU priority by ``STEP_NICENESS`` when set (``runner.LOCAL_STEP_NICENESS``); returns
    the niceness now."""
    step = os.environ.get(STEP_NICENESS, "")
    try:
        return os.nice(int(step)) if step else os.nice(0)
    except ValueError:
        raise ValueError(f"{STEP_NICENESS}={step!r} is not a whole number") from None


class ServiceUnreachable(RuntimeError):
    """MLflow or Feast cannot be reached; the message names which and where."""


def mlflow_client(mlflow_uri: str) -> Any:
    """A client for a tracking server that answers, or a clear error naming the address."""
    import urllib.request

    from mlflow import MlflowClient

    if mlflow_uri.startswith("http"):
        try:
            with urllib.request.urlopen(f"{mlflow_uri.rstrip('/')}/health", timeout=5):
                pass
        except OSError as error:
            raise ServiceUnreachable(
                f"MLflow tracking server at {mlflow_uri} is unreachable ({error}); start it (`make services-up`)"
            ) from None
    return MlflowClient(mlflow_uri)


def feature_store(feast_repo: str) -> Any:
    from feast import FeatureStore

    if not (Path(feast_repo) / "feature_store.yaml").exists():
        raise ServiceUnreachable(
            f"no Feast repo at {feast_repo} (feature_store.yaml missing): start streaming for the component first"
        )
    store = FeatureStore(repo_path=feast_repo)
    try:
        store.list_feature_views()
    except Exception as error:
        raise ServiceUnreachable(f"Feast registry of {feast_repo} is unreadable: {error}") from None
    return store


@contextmanager
def failing_marks_run(mlflow_uri: str, run_id: str, step: str) -> Iterator[None]:
    try:
        yield
    except BaseException as error:
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_uri)
        client.set_tag(run_id, "mlstack.failed_step", step)
        client.set_tag(run_id, "mlstack.error", f"{type(error).__name__}: {error}"[:5000])
        client.set_terminated(run_id, "FAILED")
        raise


def build_training_set(
    component_name: str,
    mlflow_uri: str,
    feast_repo: str,
    offline_root: str,
    window_start: str,
    window_end: str,
    pipeline_run: str,
    outputs: dict[str, str],
    progress: Progress = print,
    reason: str = "",
) -> tuple[str, dict[str, Any]]:
    """Open the pipeline's MLflow run, write the three splits as parquet to ``outputs[split]``; return the run id
    and what was recorded about the data."""
    component = load(component_name)
    client = mlflow_client(mlflow_uri)
    store = feature_store(feast_repo)
    window = dataset.DataWindow.parse(window_start, window_end)
    training = dataset.build(component, store, offline_root, window)
    summary = training.summary()
    views = lineage.feature_view_versions(store, component.feature_groups())
    tags = lineage.tags(component.name, pipeline_run, window.label(), training.features, views, reason)

    experiment = client.get_experiment_by_name(component.name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(component.name)
    run = client.create_run(experiment_id, run_name=f"train-{pipeline_run}", tags=tags)
    run_id = run.info.run_id
    with failing_marks_run(mlflow_uri, run_id, "training-set"):
        for key, value in summary.items():
            if key.startswith("rows"):
                client.log_metric(run_id, key, float(value))
        client.log_param(run_id, "data_start", summary["data_start"])
        client.log_param(run_id, "data_end", summary["data_end"])
        client.log_dict(run_id, summary, "training_set.json")
        for split, frame in training.splits.items():
            frame.to_parquet(outputs[split], index=False)
        progress(
            f"training set of {component.name}: {summary['rows']} examples from {summary['data_start']} to "
            f"{summary['data_end']} ({summary['rows_train']} train / {summary['rows_validation']} validation / "
            f"{summary['rows_holdout']} holdout), {len(training.features)} features"
        )
    return run_id, summary


def trial_data(component_name: str, train_path: str, validation_path: str) -> TrialData:
    return TrialData.of(load(component_name).model, pd.read_parquet(train_path), pd.read_parquet(validation_path))


def search(
    component_name: str,
    mlflow_uri: str,
    run_id: str,
    train_path: str,
    validation_path: str,
    settings: SearchSettings,
    ray_address: str = "",
    progress: Progress = print,
) -> dict[str, Any]:
    """Ray Tune over the component's space; locally, or on a Ray cluster through its Jobs API."""
    yield_cpu()
    component = load(component_name)
    client = mlflow_client(mlflow_uri)
    with failing_marks_run(mlflow_uri, run_id, "search"):
        experiment_id = client.get_run(run_id).info.experiment_id
        for key, value in {
            "trials": settings.trials,
            "concurrency": settings.concurrency,
            "seed": settings.seed,
        }.items():
            client.log_param(run_id, f"search_{key}", value)
        if ray_address:
            from pipelines.training.remote_search import submit

            outcome: dict[str, Any] = submit(
                ray_address,
                component_name,
                mlflow_uri,
                experiment_id,
                run_id,
                train_path,
                validation_path,
                settings,
                progress,
            )
        else:
            data = trial_data(component_name, train_path, validation_path)
            if data.without_values:
                progress(
                    f"{len(data.without_values)} model inputs have no value in any of the {len(data.y_train)} "
                    f"training rows (their windows had not closed yet): fitted as constants, so this model does not "
                    f"use them: {', '.join(data.without_values)}"
                )
                client.set_tag(run_id, WITHOUT_VALUES_TAG, ",".join(data.without_values))
            with tempfile.TemporaryDirectory(prefix="mlstack-tune-") as storage:
                result = run_search(
                    component.model, data, settings, mlflow_uri, experiment_id, run_id, Path(storage), progress
                )
            progress(describe(component.model.metric, result))
            outcome = result.to_dict()
        client.log_dict(run_id, outcome, "search.json")
        client.log_metric(run_id, f"best_validation_{component.model.metric.name}", outcome["best"]["score"])
        for name, value in outcome["best"]["params"].items():
            client.log_param(run_id, f"best_{name}", value)
    return outcome


def register(
    component_name: str,
    mlflow_uri: str,
    run_id: str,
    train_path: str,
    validation_path: str,
    holdout_path: str,
    best_json: str,
    min_gain: float,
    seed: int,
    progress: Progress = print,
    accept_ties: bool = False,
) -> dict[str, Any]:
    """Refit the best configuration on train + validation, gate it against the champion, register or not."""
    component = load(component_name)
    client = mlflow_client(mlflow_uri)
    if min_gain < 0:
        raise ValueError(f"min_gain must be 0 or more, not {min_gain}")
    with failing_marks_run(mlflow_uri, run_id, "register"):
        best = json.loads(best_json)
        model = component.model
        fit_frame = pd.concat([pd.read_parquet(train_path), pd.read_parquet(validation_path)], ignore_index=True)
        fit_frame = fit_frame.sort_values(EVENT_TIMESTAMP, kind="stable")
        fitted = best_stage_model(
            model, best["params"], model.prepare(fit_frame), fit_frame[model.target].to_numpy(), best["stage"], seed
        )
        run_tags = client.get_run(run_id).data.tags
        lineage_tags = {k: v for k, v in run_tags.items() if k.startswith(lineage.PREFIX)}
        decision = evaluate_and_register(
            component,
            fitted,
            pd.read_parquet(holdout_path),
            min_gain,
            mlflow_uri,
            run_id,
            lineage_tags,
            accept_ties,
            training=fit_frame,
        )
    client.set_terminated(run_id, "FINISHED")
    if decision.passed:
        progress(f"registered {component.name} v{decision.version} as {decision.alias}: {decision.reason}")
    else:
        progress(f"not registered: {decision.reason}")
    return dict(decision.to_dict())
