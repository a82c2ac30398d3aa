"""The training pipeline as KFP v2 components: training set -> Ray Tune search -> gate and register.

Each component is a thin shell over ``steps.py`` and runs in the project's pipeline image (which holds this
repository's packages at a pinned version), so nothing is pip-installed at run time and a compiled pipeline is
reproducible. Locally the KFP runner executes the same components as subprocesses of the main environment.
"""

# No `from __future__ import annotations`: KFP reads the components' annotations as types at decoration time.
from typing import Any, cast

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from contract.resources import ResourceHints, WorkloadHint
from pipelines.sizing import pod_size

PIPELINE_NAME = "mlstack-training"
DEFAULT_IMAGE = "mlstack-pipeline:dev"
"""Overridden by the Pulumi program with the content-derived tag of the image it built (see ``infra/``)."""


def step_resources(hint: WorkloadHint) -> dict[str, str]:
    """Requests and limits of a step from a component's ``resources.training`` hint, as the platform sizes every
    component pod (``pipelines.sizing``)."""
    try:
        size = pod_size(hint)
    except ValueError:
        raise ValueError(f"training hint {hint} is not a CPU and memory quantity") from None
    return {
        "cpu_request": f"{size.cpu}m",
        "cpu_limit": f"{size.cpu_limit}m",
        "memory_request": f"{size.memory}Mi",
        "memory_limit": f"{size.memory_limit}Mi",
    }


def build_pipeline(image: str = DEFAULT_IMAGE, training: WorkloadHint | None = None) -> Any:
    """The pipeline function, its components bound to ``image`` and its search step sized by ``training`` (a
    component's ``resources.training``; the contract's default hint when None)."""
    sized = step_resources(training or ResourceHints().training)

    @dsl.component(base_image=image, install_kfp_package=False)
    def training_set(
        component: str,
        mlflow_uri: str,
        feast_repo: str,
        offline_root: str,
        window_start: str,
        window_end: str,
        pipeline_run: str,
        reason: str,
        train: Output[Dataset],
        validation: Output[Dataset],
        holdout: Output[Dataset],
        data: Output[Metrics],
    ) -> str:
        """Point-in-time training set from Feast, split by time; opens the pipeline's MLflow run."""
        from pipelines.training.steps import build_training_set

        paths = {"train": train.path, "validation": validation.path, "holdout": holdout.path}
        run_id, summary = build_training_set(
            component,
            mlflow_uri,
            feast_repo,
            offline_root,
            window_start,
            window_end,
            pipeline_run,
            paths,
            reason=reason,
        )
        for key, value in summary.items():
            if key.startswith("rows"):
                data.log_metric(key, value)
        data.metadata["data_window"] = f"{summary['data_start']}..{summary['data_end']}"
        data.metadata["features"] = summary["features"]
        return run_id

    @dsl.component(base_image=image, install_kfp_package=False)
    def search(
        component: str,
        mlflow_uri: str,
        run_id: str,
        train: dsl.Input[Dataset],
        validation: dsl.Input[Dataset],
        trials: int,
        concurrency: int,
        seed: int,
        ray_address: str,
        result: Output[Metrics],
    ) -> str:
        """Ray Tune with ASHA; every trial a nested MLflow run. Returns the best trial as JSON."""
        import json

        from pipelines.training.search import SearchSettings
        from pipelines.training.steps import search as run

        settings = SearchSettings(trials=trials, concurrency=concurrency, seed=seed)
        outcome = run(component, mlflow_uri, run_id, train.path, validation.path, settings, ray_address)
        result.log_metric("best_validation_score", outcome["best"]["score"])
        result.log_metric("trials", len(outcome["trials"]))
        result.log_metric("trials_failed", sum(t["status"] == "failed" for t in outcome["trials"]))
        result.log_metric("trials_stopped_early", sum(t["status"] == "stopped early" for t in outcome["trials"]))
        return json.dumps(outcome["best"])

    @dsl.component(base_image=image, install_kfp_package=False)
    def register(
        component: str,
        mlflow_uri: str,
        run_id: str,
        train: dsl.Input[Dataset],
        validation: dsl.Input[Dataset],
        holdout: dsl.Input[Dataset],
        best: str,
        min_gain: float,
        accept_ties: bool,
        seed: int,
        verdict: Output[Metrics],
    ) -> str:
        """Refit the best configuration, gate it against the champion, register it as challenger if it passes
        (as champion when the model has none)."""
        import json

        from pipelines.training.steps import register as run

        decision = run(
            component,
            mlflow_uri,
            run_id,
            train.path,
            validation.path,
            holdout.path,
            best,
            min_gain,
            seed,
            accept_ties=accept_ties,
        )
        verdict.log_metric("holdout_score", decision["holdout_score"])
        verdict.log_metric("passed", int(decision["passed"]))
        verdict.metadata["reason"] = decision["reason"]
        return json.dumps(decision)

    @dsl.pipeline(name=PIPELINE_NAME, description="Feast training set -> Ray Tune search -> MLflow challenger")
    def training_pipeline(
        component: str,
        mlflow_uri: str,
        feast_repo: str,
        offline_root: str,
        window_start: str = "",
        window_end: str = "",
        trials: int = 8,
        concurrency: int = 2,
        min_gain: float = 0.0,
        accept_ties: bool = False,
        seed: int = 0,
        ray_address: str = "",
        reason: str = "",
    ) -> str:
        data = training_set(
            component=component,
            mlflow_uri=mlflow_uri,
            feast_repo=feast_repo,
            offline_root=offline_root,
            window_start=window_start,
            window_end=window_end,
            pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            reason=reason,
        ).set_display_name("training set")
        tuned = search(
            component=component,
            mlflow_uri=mlflow_uri,
            run_id=data.outputs["Output"],
            train=data.outputs["train"],
            validation=data.outputs["validation"],
            trials=trials,
            concurrency=concurrency,
            seed=seed,
            ray_address=ray_address,
        ).set_display_name("ray tune search")
        # The component's training hint; in the cluster the search runs on KubeRay when ray_address is set, and
        # this task then only waits.
        tuned.set_cpu_request(sized["cpu_request"]).set_cpu_limit(sized["cpu_limit"])
        tuned.set_memory_request(sized["memory_request"]).set_memory_limit(sized["memory_limit"])
        decided = register(
            component=component,
            mlflow_uri=mlflow_uri,
            run_id=data.outputs["Output"],
            train=data.outputs["train"],
            validation=data.outputs["validation"],
            holdout=data.outputs["holdout"],
            best=tuned.outputs["Output"],
            min_gain=min_gain,
            accept_ties=accept_ties,
            seed=seed,
        ).set_display_name("gate and register")
        for task in (data, tuned, decided):
            task.set_caching_options(False)  # the feature history grows between runs
        return cast(str, decided.outputs["Output"])  # a channel; KFP resolves it to the decision JSON

    return training_pipeline
