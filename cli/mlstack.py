"""``mlstack``: the project's command line for embedded mode (also reached through the Makefile)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.demo_cli import demo
from cli.keys_cli import app as keys_app
from cli.kubectl_canary import app as canary_app
from cli.monitor_cli import app as monitor_app
from cli.retrain_cli import app as trigger_app
from cli.retrain_cli import retrain
from cli.serve_cli import app as serve_app
from cli.status_table import status_table
from cli.stream_cli import app as stream_app
from cli.train_cli import app as train_app
from local.errors import EmbeddedError
from local.services import SERVICE_BUILDERS, EmbeddedServices
from local.settings import EmbeddedSettings

# Wide enough for the status table when output goes to a file or CI log.
console = Console(width=None if sys.stdout.isatty() else 180)
# Errors are one line on stderr, never wrapped, so scripts and people can grep them.
errors = Console(stderr=True, soft_wrap=True)
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
services_app = typer.Typer(no_args_is_help=True, help="The embedded platform services (Kafka, Redis, MLflow).")
app.add_typer(services_app, name="services")
app.add_typer(stream_app, name="stream")
app.add_typer(train_app, name="train")
app.add_typer(serve_app, name="serve")
app.add_typer(monitor_app, name="monitor")
app.command("retrain")(retrain)
app.add_typer(trigger_app, name="trigger")
app.add_typer(keys_app, name="keys", help="Inference keys per consumer (cluster Secrets; --embedded for HAProxy).")
app.add_typer(canary_app, name="canary", help="Canary rollouts (the kubectl plugin; --embedded for local servers).")

Only = Annotated[
    list[str] | None, typer.Option("--only", help=f"Limit to these services ({', '.join(SERVICE_BUILDERS)}).")
]


def _services(only: list[str] | None = None) -> EmbeddedServices:
    return EmbeddedServices(EmbeddedSettings.from_env(), only)


@services_app.command("up")
def services_up(only: Only = None) -> None:
    """Start the services that are not running and wait until all are healthy."""
    services = _services(only)
    began = time.monotonic()
    rows = services.up(progress=lambda line: console.print(f"  {line}"))
    console.print(status_table(rows))
    console.print(f"all healthy {time.monotonic() - began:.1f}s after `services up`; stop with `make services-down`")


@services_app.command("status")
def services_status(only: Only = None) -> None:
    """Show each service's state, health, memory and address."""
    services = _services(only)
    rows = services.status()
    console.print(status_table(rows))
    programs = [] if only else services.programs()
    if programs:
        console.print(status_table(programs, "component programs (streaming, model servers, proxies)"))
    if any(row.pid and not row.healthy for row in rows):
        raise typer.Exit(1)


@services_app.command("down")
def services_down() -> None:
    """Stop every service and the supervisor; leave no process behind."""
    stopped = _services().down(progress=lambda line: console.print(f"  {line}"))
    console.print(f"stopped ({stopped} process(es))" if stopped else "nothing was running")


@services_app.command("reset")
def services_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Stop the services and wipe their state (topics, MLflow runs, online features)."""
    settings = EmbeddedSettings.from_env()
    if not yes and sys.stdin.isatty():
        typer.confirm(f"wipe {settings.state_dir}?", abort=True)
    EmbeddedServices(settings).down(progress=lambda line: console.print(f"  {line}"))
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    console.print(f"wiped {settings.state_dir}")


@services_app.command("logs")
def services_logs(name: str, lines: Annotated[int, typer.Option("-n")] = 40) -> None:
    """Print the last lines of a service's log."""
    path = _services([name]).daemon.log_path(name)
    if not path.exists():
        raise EmbeddedError(f"no log for {name} at {path}")
    console.print("\n".join(path.read_text(errors="replace").splitlines()[-lines:]), markup=False)


app.command("demo")(demo)

component_app = typer.Typer(no_args_is_help=True, help="Use-case components: list them, or scaffold a new one.")
app.add_typer(component_app, name="component")


@component_app.command("new")
def component_new(
    name: str,
    task: str = typer.Option("binary", help="The model's task type: binary, multiclass or regression."),
) -> None:
    """Write components/<name>/ and its tests from the template; it runs through the lifecycle as is."""
    from cli.scaffold import create

    scaffold = create(name, task=task)
    for path in scaffold.files:
        console.print(f"  wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    console.print(f"  registered `{scaffold.entry_point}` in pyproject.toml and reinstalled the project (editable)")
    console.print(
        f"next: `make test-unit PYTEST_ARGS=-ktest_component_{name}` runs its unit checks; "
        f"`make demo COMPONENT={name}` runs its lifecycle; components/README.md walks through making it yours"
    )


@component_app.command("list")
def component_list() -> None:
    """Every component the registry finds, validated; an invalid one shows its error (and the exit status is 1)."""
    from rich.markup import escape

    from contract.component import ContractError
    from contract.registry import available, load

    invalid = 0
    for name in available():
        try:
            console.print(f"  {name}: {escape(load(name).description)}", highlight=False)
        except ContractError as error:
            invalid += 1
            console.print(f"  {name}: [red]invalid[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    if invalid:
        raise typer.Exit(1)


def _known_errors() -> tuple[type[Exception], ...]:
    from contract.component import ContractError
    from pipelines.training.dataset import TrainingDataError
    from pipelines.training.runner import PipelineFailed
    from pipelines.training.steps import ServiceUnreachable
    from serving.rollout.rollout import RolloutError

    return (EmbeddedError, ContractError, TrainingDataError, ServiceUnreachable, PipelineFailed, RolloutError)


KNOWN_ERRORS = _known_errors()


def main() -> None:
    """Entry point: known problems print as one line and exit 1; Ctrl-C exits 130."""
    try:
        app()
    except KNOWN_ERRORS as error:
        errors.print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
