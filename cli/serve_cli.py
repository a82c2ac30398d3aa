"""``mlstack serve ...``: serve a component's champion locally, behind the HAProxy that canaries go through."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from contract.registry import load
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings

console = Console()
app = typer.Typer(no_args_is_help=True, help="Model servers (KServe) for a component, behind HAProxy.")
ComponentArg = Annotated[str, typer.Argument(help="Component name.")]


def _serving(component: str) -> EmbeddedServing:
    return EmbeddedServing(EmbeddedServices(EmbeddedSettings.from_env()), load(component))


@app.command("start")
def start(
    component: ComponentArg,
    version: Annotated[str, typer.Option(help="Registry version; default: the champion alias.")] = "",
) -> None:
    """Serve the champion (or a given version) and print the endpoint."""
    from mlflow import MlflowClient

    serving = _serving(component)
    if not version:
        version = str(
            MlflowClient(serving.settings.mlflow_url).get_model_version_by_alias(component, "champion").version
        )
    endpoint = serving.serve(version, progress=lambda line: console.print(f"  {line}"))
    console.print(
        f"{component} v{version}: POST {endpoint}/v1/models/{component}:predict (V2: /v2/models/{component}/infer)"
    )
    console.print(f"canary a new version with `kubectl-canary --embedded start {component}` (or `mlstack canary`)")


@app.command("stop")
def stop(component: ComponentArg) -> None:
    """Stop the component's model servers and proxy."""
    _serving(component).stop()
    console.print(f"stopped serving {component}")
