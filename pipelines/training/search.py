"""Hyperparameter search with Ray Tune: seeded trial configurations, ASHA early stopping, and every trial a
nested MLflow run under the pipeline's run."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract.model import Choice, IntRange, LogUniform, Metric, ModelSpec, Param, Uniform

STOPPED_EARLY = "mlstack.stopped_early"


@dataclass(frozen=True)
class SearchSettings:
    trials: int = 8
    concurrency: int = 2
    """Trials running at once (one CPU each)."""
    grace_stages: int = 2
    """Stages every trial runs before ASHA may stop it."""
    seed: int = 0
    early_stopping: bool = True
    """ASHA stops trials that trail the others at the same stage; off, every trial runs all stages."""


def fittable(x: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``x`` with each column that holds no value at all set to 0.0, and those columns' names.

    A feature can be missing from every training row: a view whose first window had not closed by the newest
    labelled example (the demo's first model, trained on a few minutes of events, before the first 5-minute slide
    of a 1-hour window), or a feature just added. No learner can learn from such a column, and scikit-learn's
    histogram gradient boosting cannot even bin it (1.9.1 fails with "window shape cannot be larger than input
    array shape"). As a constant it is a column every learner ignores: the model is trained on the others, and
    uses the feature once a retraining sees its values. Validation and holdout rows keep theirs (missing)."""
    empty = [str(column) for column in x.columns if x[column].isna().all()]
    return (x.assign(**dict.fromkeys(empty, 0.0)) if empty else x), empty


@dataclass(frozen=True)
class TrialData:
    """Prepared model inputs, shared with the trials through Ray's object store."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_validation: pd.DataFrame
    y_validation: np.ndarray
    without_values: tuple[str, ...] = ()
    """Model inputs with no value in any training row, fitted as constants (``fittable``)."""

    @classmethod
    def of(cls, model: ModelSpec, train: pd.DataFrame, validation: pd.DataFrame) -> TrialData:
        """The component's ``prepare`` applied to both splits, the training inputs made ``fittable``."""
        x_train, empty = fittable(model.prepare(train))
        return cls(
            x_train,
            train[model.target].to_numpy(),
            model.prepare(validation),
            validation[model.target].to_numpy(),
            tuple(empty),
        )


@dataclass
class TrialOutcome:
    params: dict[str, Any]
    status: str
    """``finished``, ``stopped early`` (by ASHA) or ``failed``."""
    score: float | None = None
    """Best validation score over its stages."""
    best_stage: int | None = None
    stages: int = 0
    mlflow_run_id: str | None = None
    error: str | None = None


@dataclass
class SearchResult:
    metric: str
    direction: str
    trials: list[TrialOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def best(self) -> TrialOutcome:
        scored = [t for t in self.trials if t.score is not None and t.status != "failed"]
        if not scored:
            errors = "; ".join(sorted({t.error or "?" for t in self.trials}))
            raise RuntimeError(f"every trial failed: {errors}")
        sign = 1 if self.direction == "max" else -1
        return max(scored, key=lambda t: sign * (t.score or 0.0))

    def stages_run(self) -> int:
        return sum(t.stages for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        """Everything about the search, with the best trial under ``best`` (params, stage, score)."""
        best = self.best
        return {
            "best": {"params": best.params, "stage": best.best_stage, "score": best.score},
            "metric": self.metric,
            "direction": self.direction,
            "wall_s": self.wall_s,
            "trials": [asdict(t) for t in self.trials],
        }


def sample_configs(space: Mapping[str, Param], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configurations drawn reproducibly from the space (the same seed gives the same trials, so a
    sequential run or a rerun explores exactly what the search explored)."""
    rng = random.Random(seed)

    def draw(param: Param) -> Any:
        if isinstance(param, Choice):
            return rng.choice(param.values)
        if isinstance(param, IntRange):
            return rng.randint(param.low, param.high)
        if isinstance(param, LogUniform):
            return float(math.exp(rng.uniform(math.log(param.low), math.log(param.high))))
        if isinstance(param, Uniform):
            return rng.uniform(param.low, param.high)
        raise TypeError(f"unknown search parameter {param!r}")

    return [{name: draw(param) for name, param in sorted(space.items())} for _ in range(n)]


def score_stages(
    model: ModelSpec, params: Mapping[str, Any], data: TrialData, seed: int
) -> Iterator[tuple[int, float, Any]]:
    """(stage, validation score, model) after each stage of ``fit``: the unit of work of a trial."""
    for stage, fitted in enumerate(model.fit(params, data.x_train, data.y_train, seed), start=1):
        yield stage, model.metric.score(data.y_validation, model.predict(fitted, data.x_validation)), fitted


def _trial(config: dict[str, Any], model: ModelSpec, data: TrialData, seed: int) -> None:
    """One Ray Tune trial: fit stage by stage and report each validation score (ASHA may end it after any)."""
    from ray import tune

    for stage, score, _ in score_stages(model, config["params"], data, seed):
        tune.report({"score": score, "stage": stage})


def _config_key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def nested_run_logger(client: Any, experiment_id: str, parent_run_id: str, metric: str) -> Any:
    """A Tune callback, on the driver, that gives each trial a nested MLflow run and logs every reported score:
    the trials themselves stay free of MLflow (no import, no HTTP call between stages)."""
    from ray import tune

    class NestedRunLogger(tune.Callback):
        def __init__(self) -> None:
            self.runs: dict[str, str] = {}

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            params = trial.config["params"]
            run = client.create_run(
                experiment_id,
                run_name=f"trial-{trial.trial_id}",
                tags={"mlflow.parentRunId": parent_run_id, "mlstack.trial": trial.trial_id},
            )
            self.runs[_config_key(params)] = run.info.run_id
            for name, value in params.items():
                client.log_param(run.info.run_id, name, value)

        def on_trial_result(
            self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
        ) -> None:
            run_id = self.runs[_config_key(trial.config["params"])]
            client.log_metric(run_id, f"validation_{metric}", result["score"], step=int(result["stage"]))

    return NestedRunLogger()


def run_search(
    model: ModelSpec,
    data: TrialData,
    settings: SearchSettings,
    mlflow_uri: str,
    experiment_id: str,
    parent_run_id: str,
    storage: Path,
    progress: Callable[[str], None] = print,
) -> SearchResult:
    """Search the model's space on a local Ray (``settings.concurrency`` CPUs); failed trials are reported
    and do not end the search."""
    import ray
    from mlflow import MlflowClient
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    configs = sample_configs(model.search_space, settings.trials, settings.seed)
    began = time.monotonic()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            num_cpus=settings.concurrency,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=200 * 1024 * 1024,
        )
    try:
        logger = nested_run_logger(MlflowClient(mlflow_uri), experiment_id, parent_run_id, model.metric.name)
        trainable = tune.with_resources(
            tune.with_parameters(_trial, model=model, data=data, seed=settings.seed),
            {"cpu": 1},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={"params": tune.grid_search(configs)},
            tune_config=tune.TuneConfig(
                metric="score",
                mode=model.metric.direction,
                max_concurrent_trials=settings.concurrency,
                # A new worker per trial re-imports the model's libraries and MLflow (seconds each): reuse them.
                reuse_actors=True,
                scheduler=ASHAScheduler(
                    time_attr="stage",
                    max_t=model.max_stages,
                    grace_period=min(settings.grace_stages, model.max_stages),
                    reduction_factor=2,
                )
                if settings.early_stopping
                else None,
            ),
            run_config=tune.RunConfig(
                name="search",
                storage_path=str(storage.resolve()),
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                callbacks=[logger],
                verbose=1,
            ),
        )
        stopping = f"ASHA over {model.max_stages} stages" if settings.early_stopping else "no early stopping"
        progress(f"Ray Tune: {len(configs)} trials, {settings.concurrency} at a time, {stopping}")
        grid = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()
    result = SearchResult(metric=model.metric.name, direction=model.metric.direction)
    client = MlflowClient(mlflow_uri)
    sign = 1 if model.metric.direction == "max" else -1
    for trial in (grid[i] for i in range(len(grid))):
        params = (trial.config or {})["params"]
        outcome = TrialOutcome(params=params, status="finished", mlflow_run_id=logger.runs.get(_config_key(params)))
        history = trial.metrics_dataframe
        ran = history is not None and not history.empty and "score" in history
        scored = history is not None and ran and bool(history["score"].notna().any())
        if scored and history is not None:
            best = history.loc[(sign * history["score"]).idxmax()]
            outcome.score = float(best["score"])
            outcome.best_stage = int(best["stage"])
            outcome.stages = int(history["stage"].max())
        if trial.error is not None:
            outcome.status = "failed"
            outcome.error = f"{type(trial.error).__name__}: {_root_cause(trial.error)}"
        elif ran and not scored:
            # ROC AUC of a validation split holding one class, for one: no trial can be told from another.
            outcome.status = "failed"
            outcome.error = (
                f"its validation {model.metric.name} is undefined at every stage ({len(data.y_validation)} validation "
                f"examples, {len(set(data.y_validation.tolist()))} distinct labels): stream more events or widen "
                "the training window"
            )
        elif outcome.stages < model.max_stages:
            outcome.status = "stopped early"
        result.trials.append(outcome)
        _close_run(client, outcome)
    result.wall_s = time.monotonic() - began
    return result


def _close_run(client: Any, outcome: TrialOutcome) -> None:
    """The trial's run ends FINISHED, KILLED (stopped early by ASHA) or FAILED (with the error as a tag)."""
    if outcome.mlflow_run_id is None:
        return
    if outcome.status == "failed":
        client.set_tag(outcome.mlflow_run_id, "mlstack.error", (outcome.error or "")[:5000])
        client.set_terminated(outcome.mlflow_run_id, "FAILED")
    elif outcome.status == "stopped early":
        client.set_tag(outcome.mlflow_run_id, STOPPED_EARLY, "true")
        client.set_terminated(outcome.mlflow_run_id, "KILLED")
    else:
        client.set_terminated(outcome.mlflow_run_id, "FINISHED")


def _root_cause(error: BaseException) -> str:
    """Ray wraps a trial's exception; the last line of the innermost message is what the user wrote."""
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    lines = [line for line in str(cause).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(cause).__name__


def best_stage_model(
    model: ModelSpec, params: Mapping[str, Any], x: pd.DataFrame, y: np.ndarray, stage: int, seed: int
) -> Any:
    """Refit ``params`` for exactly ``stage`` stages (the best trial's best point), on ``fittable`` inputs."""
    fitted = None
    for index, model_at_stage in enumerate(model.fit(params, fittable(x)[0], y, seed), start=1):
        fitted = model_at_stage
        if index >= stage:
            break
    if fitted is None:
        raise RuntimeError("fit yielded no model")
    return fitted


def describe(metric: Metric, result: SearchResult) -> str:
    best = result.best
    counts = {s: sum(t.status == s for t in result.trials) for s in ("finished", "stopped early", "failed")}
    return (
        f"{len(result.trials)} trials ({', '.join(f'{n} {s}' for s, n in counts.items() if n)}) "
        f"in {result.wall_s:.1f}s;"
        f" best validation {metric.name} {best.score:.4f} at stage {best.best_stage} with {best.params}"
    )
