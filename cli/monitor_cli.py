"""``mlstack monitor ...``: the dashboards of a component in embedded mode, from the embedded Prometheus: the same
panels and PromQL as the cluster's Grafana (``monitoring.dashboards``), drawn to a PNG or printed as a table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contract.registry import available
from local.dashboard_report import Prometheus, current_values, duration_s, evaluate_range, formatted, plot_report
from local.errors import EmbeddedError
from local.settings import EmbeddedSettings

console = Console(width=None if sys.stdout.isatty() else 180)
errors = Console(stderr=True, soft_wrap=True)
app = typer.Typer(no_args_is_help=True, help="Dashboards of a component (streaming, serving, model) in embedded mode.")
ComponentArg = Annotated[str, typer.Argument(help="Component name (see `mlstack stream components`).")]
Dashboards = Annotated[
    list[str] | None, typer.Option("--dashboard", "-d", help="Only these dashboards: streaming, serving, model.")
]


def _component(name: str) -> str:
    names = available()
    if name not in names:
        raise EmbeddedError(f"unknown component {name!r}; known: {', '.join(names)}")
    return name


@app.command("report")
def report(
    component: ComponentArg,
    out: Annotated[Path | None, typer.Option("--out", help="PNG to write (default: <state>/reports/...).")] = None,
    since: Annotated[str, typer.Option("--since", help="How far back: 30m, 2h, 1d.")] = "30m",
    dashboard: Dashboards = None,
) -> None:
    """Draw every panel over the last `--since` to a PNG."""
    settings = EmbeddedSettings.from_env()
    try:
        name = _component(component)
        evaluated = evaluate_range(
            Prometheus(settings.prometheus_url), name, duration_s(since), settings.alerting.scrape_interval, dashboard
        )
        path = out or settings.state_dir / "reports" / f"{name}-monitoring.png"
        plot_report(name, evaluated, since, path)
    except EmbeddedError as error:
        errors.print(f"error: {error}")
        raise typer.Exit(1) from None
    empty = sum(1 for item in evaluated if not item.lines)
    console.print(f"wrote {path} ({len(evaluated)} panels, {empty} without data over the last {since})")


@app.command("status")
def status(
    component: ComponentArg,
    window: Annotated[str, typer.Option("--window", help="Range of rates and quantiles (default: 4 scrapes).")] = "",
    dashboard: Dashboards = None,
) -> None:
    """Print every panel's current values as a table."""
    settings = EmbeddedSettings.from_env()
    try:
        name = _component(component)
        if window:
            duration_s(window)
        evaluated = current_values(
            Prometheus(settings.prometheus_url), name, settings.alerting.scrape_interval, dashboard, window
        )
    except EmbeddedError as error:
        errors.print(f"error: {error}")
        raise typer.Exit(1) from None
    table = Table(title=f"monitoring {name}", title_justify="left")
    for column in ("dashboard", "panel", "series", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for item in evaluated:
        if not item.lines:
            table.add_row(item.dashboard.key, item.panel.title, "-", "no data")
        for line in item.lines:
            table.add_row(
                item.dashboard.key, item.panel.title, line.label, formatted(line.points[-1][1], item.panel.unit)
            )
    console.print(table)
