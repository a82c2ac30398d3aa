"""``mlstack train ...``: compile the training pipeline, or run it locally or on a Kubeflow Pipelines API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contract.registry import load
from local.settings import EmbeddedSettings
from local.training import embedded_params, pipeline_root
from pipelines.training.pipeline import DEFAULT_IMAGE
from pipelines.training.runner import PipelineParams, PipelineRun, RunOptions, compile_pipeline, run_cluster, run_local

console = Console()
app = typer.Typer(no_args_is_help=True, help="The training pipeline: KFP v2 + Ray Tune + MLflow registry.")
ComponentArg = Annotated[str, typer.Argument(help="Component name (see `mlstack stream components`).")]


def print_run(component: str, run: PipelineRun) -> None:
    decision = run.decision
    table = Table(title=f"training {component}", title_justify="left", show_header=False)
    alias = decision.get("alias") or "challenger"
    table.add_row("verdict", f"{alias} registered" if decision["passed"] else "not registered")
    table.add_row("reason", decision["reason"])
    if decision.get("version"):
        table.add_row("registered version", f"{component} v{decision['version']} (alias {alias})")
    if decision.get("baseline_score") is not None:
        table.add_row(f"naive baseline {decision['metric']}", f"{decision['baseline_score']:.4f}")
    for step, seconds in run.step_s.items():
        table.add_row(f"step {step} (s)", f"{seconds:.1f}")
    table.add_row("pipeline wall time (s)", f"{run.wall_s:.1f}")
    console.print(table)


@app.command("compile")
def compile_command(
    out: Annotated[Path, typer.Option(help="Build folder for the IR YAML.")] = Path("build/pipelines"),
    image: Annotated[str, typer.Option(help="Pipeline image the steps run in.")] = DEFAULT_IMAGE,
) -> None:
    """Compile the pipeline to IR YAML for the Kubeflow Pipelines API."""
    console.print(f"compiled {compile_pipeline(out, image)}")


@app.command("run")
def run_command(
    component: ComponentArg,
    cluster: Annotated[
        str, typer.Option(help="KFP API endpoint (e.g. http://localhost:8888); default runs locally.")
    ] = "",
    trials: Annotated[int, typer.Option(help="Ray Tune trials.")] = 8,
    concurrency: Annotated[int, typer.Option(help="Trials at once (one CPU each).")] = 2,
    min_gain: Annotated[float, typer.Option(help="How much better than the champion a challenger must be.")] = 0.0,
    accept_ties: Annotated[
        bool,
        typer.Option(
            help="Also register a challenger within the metric's tolerance of the champion (fresher data, as good as "
            "the holdout can tell): its canary decides."
        ),
    ] = False,
    window_start: Annotated[str, typer.Option(help="ISO-8601 start of the training data window.")] = "",
    window_end: Annotated[str, typer.Option(help="ISO-8601 end of the training data window (exclusive).")] = "",
    seed: Annotated[int, typer.Option(help="Seed of the search and the models.")] = 0,
    mlflow_uri: Annotated[str, typer.Option(help="Cluster runs: MLflow as the pipeline pods reach it.")] = "",
    feast_repo: Annotated[str, typer.Option(help="Cluster runs: the Feast repo path inside the image.")] = "",
    offline_root: Annotated[str, typer.Option(help="Cluster runs: the offline store root.")] = "",
    ray_address: Annotated[str, typer.Option(help="Cluster runs: Ray dashboard URL for the Jobs API.")] = "",
) -> None:
    """Run the training pipeline for a component (locally by default, through the KFP local runner)."""
    run: RunOptions = {
        "trials": trials,
        "concurrency": concurrency,
        "min_gain": min_gain,
        "accept_ties": accept_ties,
        "window_start": window_start,
        "window_end": window_end,
        "seed": seed,
    }
    if cluster:
        params = PipelineParams(component, mlflow_uri, feast_repo, offline_root, ray_address=ray_address, **run)
        package = compile_pipeline(Path("build/pipelines"), training=load(component).resources.training)
        console.print(run_cluster(cluster, params, package, progress=console.print))
        return
    settings = EmbeddedSettings.from_env()
    result = run_local(
        embedded_params(settings, component, **run),
        pipeline_root(settings),
        progress=lambda line: console.print(line, highlight=False),
    )
    print_run(component, result)
