"""``kubectl canary``: metric-gated canary rollouts of a component's model, as a kubectl plugin.

Installed as the executable ``kubectl-canary`` (a console script of this project), so operators type
``kubectl canary start|step|status|promote|rollback|abort|run <component>``. Against a cluster it patches the
component's InferenceService and reads Prometheus; with ``--embedded`` it drives the local model servers behind
HAProxy. The same ``Rollout`` is usable as a library (``serving.rollout.rollout``).
"""

from __future__ import annotations

import math
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from serving.rollout.analysis import STABLE_UNHEALTHY, Snapshot
from serving.rollout.rollout import CHAMPION, ReportsTraffic, Rollout, RolloutConfig, RolloutError

console = Console()
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
ComponentArg = Annotated[str, typer.Argument(help="The component whose model is rolled out.")]


class Target:
    embedded: bool = False
    namespace: str = "mlstack"
    prometheus: str = ""
    mlflow_uri: str = ""


target = Target()


@app.callback()
def options(
    embedded: Annotated[bool, typer.Option(help="Drive the embedded model servers instead of a cluster.")] = False,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the InferenceService.")] = "mlstack",
    prometheus: Annotated[str, typer.Option(envvar="MLSTACK_PROMETHEUS_URL", help="Prometheus base URL.")] = "",
    mlflow_uri: Annotated[str, typer.Option(envvar="MLFLOW_TRACKING_URI", help="MLflow tracking server.")] = "",
) -> None:
    target.embedded, target.namespace, target.prometheus, target.mlflow_uri = (
        embedded,
        namespace,
        prometheus,
        mlflow_uri,
    )


def rollout_for(component: str, config: RolloutConfig | None = None) -> Rollout:
    from mlflow import MlflowClient

    if target.embedded:
        from contract.registry import load
        from local.model_serving import EmbeddedBackend, EmbeddedServing
        from local.services import EmbeddedServices
        from local.settings import EmbeddedSettings

        settings = EmbeddedSettings.from_env()
        backend: Any = EmbeddedBackend(EmbeddedServing(EmbeddedServices(settings), load(component)))
        return Rollout(backend, MlflowClient(target.mlflow_uri or settings.mlflow_url), config)
    from kubernetes import client
    from kubernetes import config as kube_config

    from serving.rollout.cluster_backend import ClusterBackend, PrometheusReader

    if not target.prometheus or not target.mlflow_uri:
        raise RolloutError("cluster mode needs --prometheus and --mlflow-uri (or their environment variables)")
    kube_config.load_kube_config()
    registry = MlflowClient(target.mlflow_uri)
    backend = ClusterBackend(
        client.CustomObjectsApi(),
        client.CoreV1Api(),
        target.namespace,
        component,
        PrometheusReader(target.prometheus),
        champion_version=lambda: str(registry.get_model_version_by_alias(component, CHAMPION).version),
    )
    return Rollout(backend, registry, config)


def _live(window: Snapshot) -> str:
    """``0.9412 ±0.011 (412)``: the live metric, its standard error and the labels it rests on; empty without."""
    if window.live is None:
        return ""
    error = "±inf" if math.isinf(window.live.stderr) else f"±{window.live.stderr:.3f}"
    return f"{window.live.value:.4f} {error} ({window.live.count})"


def status_table(rollout: Rollout) -> Table:
    """One row per version: role, traffic, key metrics of the current window, and the verdict.

    The traffic is what the platform reports routing where it reports it (the InferenceService's status), with
    the rollout's intended share beside it while the two differ (a revision not ready yet, a rollback waiting)."""
    state = rollout.state()
    reported = rollout.backend.reported_traffic() if isinstance(rollout.backend, ReportsTraffic) else None

    def traffic(version: object, intended: int) -> str:
        if reported is None:
            return f"{intended}%"
        now = reported.get(str(version), 0)
        return f"{now}%" if now == intended else f"{now}% (intended {intended}%)"

    table = Table(title=f"canary of {rollout.name}", title_justify="left")
    if reported is not None:
        table.caption = "reported by the InferenceService: " + (
            ", ".join(f"v{version} {share}%" for version, share in reported.items()) or "no traffic yet"
        )
    # "shift": chi-square p and Cramér's V of the predicted classes, or of the scores in groups (with their PSI).
    # "live": the monitor's live metric on labelled predictions, with its standard error and label count.
    for column in ("role", "version", "traffic", "requests", "error rate", "p99 ms", "shift", "live", "verdict"):
        table.add_column(column, justify="left" if column in {"role", "verdict"} else "right")
    if not state:
        stable = rollout.backend.stable_version()
        table.add_row("stable", stable, traffic(stable, 100), "", "", "", "", "", "no rollout yet")
        return table
    if state.get("outcome"):
        ended = datetime.fromtimestamp(float(state.get("ended_at", 0)), tz=UTC).isoformat(timespec="seconds")
        reason = f": {state['reason']}" if state.get("reason") else ""
        stable = rollout.backend.stable_version()
        canary = str(state["canary_version"])
        table.add_row("stable", stable, traffic(stable, 100), "", "", "", "", "", "")
        ending = f"{state['outcome']} {ended}{reason}"
        table.add_row("last canary", canary, traffic(canary, 0), "", "", "", "", "", ending)
        return table
    analysis = rollout.analyse()
    if state.get("paused"):
        table.caption = f"paused, traffic unchanged: {state['paused']}" + (
            f"\n{table.caption}" if table.caption else ""
        )
    if state.get("experiment"):
        left = max(0.0, float(state["experiment"]["ends_at"]) - time.time())
        table.caption = f"experiment: {state['share']}% held, {left:.0f}s to its conclusion" + (
            f"\n{table.caption}" if table.caption else ""
        )
    if state.get("holding"):
        table.caption = f"holding at {state['share']}% {state['holding']}" + (
            f"\n{table.caption}" if table.caption else ""
        )
    if analysis.live is not None and (metric := rollout.metric()) is not None:
        table.caption = analysis.live.summary(metric) + (f"\n{table.caption}" if table.caption else "")
    stable_verdict = analysis.summary if analysis.verdict == STABLE_UNHEALTHY else ""
    for role, version, share, window in (
        ("stable", state["stable_version"], 100 - state["share"], analysis.stable),
        ("canary", state["canary_version"], state["share"], analysis.canary),
    ):
        p99 = window.quantile(0.99)
        table.add_row(
            role,
            str(version),
            traffic(version, share),
            f"{window.requests:.0f}",
            f"{window.error_rate:.1%}",
            "" if math.isnan(p99) else f"{p99 * 1000:.1f}",
            "" if role == "stable" else analysis.shift.short,
            _live(window),
            stable_verdict if role == "stable" else analysis.summary,
        )
    return table


@app.command()
def start(
    component: ComponentArg,
    version: Annotated[str | None, typer.Option(help="Registry version; default: the challenger alias.")] = None,
    share: Annotated[int | None, typer.Option(help="Canary share in percent; default: the schedule's first.")] = None,
) -> None:
    """Put a registered version on a canary share of traffic."""
    state = rollout_for(component).start(version, share)
    if state["outcome"]:  # its server never became ready: rolled back at once
        console.print(f"{component} v{state['canary_version']} {state['outcome']}: {state['reason']}")
        raise typer.Exit(1)
    console.print(f"{component} v{state['canary_version']} takes {state['share']}% (stable v{state['stable_version']})")


@app.command()
def experiment(
    component: ComponentArg,
    version: Annotated[str | None, typer.Option(help="Registry version; default: the challenger alias.")] = None,
    split: Annotated[int, typer.Option(help="The challenger's share, held for the whole horizon.")] = 50,
    horizon: Annotated[float, typer.Option(help="Seconds to hold the split before concluding.")] = 1800.0,
    window: Annotated[float, typer.Option(help="Seconds between the guardrail checks.")] = 30.0,
) -> None:
    """An A/B experiment: hold a fixed split for the horizon (guardrails still roll a failing version back), then
    report the challenger's effect on the live metric with its interval; traffic returns to stable, and promoting
    is yours (`start` and `run`, or `promote`)."""
    rollout = rollout_for(component)
    state = rollout.start(version, split, experiment_s=horizon)
    if state["outcome"]:
        console.print(f"{component} v{state['canary_version']} {state['outcome']}: {state['reason']}")
        raise typer.Exit(1)
    console.print(f"{component} v{state['canary_version']} takes {split}% for {horizon:.0f}s", highlight=False)
    state = rollout.run(window_s=window, timeout_s=horizon + 10 * window, progress=console.print)
    result = state.get("experiment", {}).get("result")
    console.print(f"{component} v{state['canary_version']}: {state.get('outcome')}: {state.get('reason', '')}")
    if result is None:
        raise typer.Exit(1)


@app.command()
def step(component: ComponentArg) -> None:
    """Analyse the current window; step up the schedule on pass, roll back on fail."""
    action, analysis = rollout_for(component).step()
    console.print(f"{analysis.summary} -> {action}")


@app.command()
def status(component: ComponentArg) -> None:
    """Versions, shares, key metrics and the verdict so far."""
    console.print(status_table(rollout_for(component)))


@app.command()
def promote(component: ComponentArg) -> None:
    """Give the canary all traffic and make it the MLflow champion."""
    state = rollout_for(component).promote()
    console.print(f"{component} v{state['canary_version']} promoted to champion")


@app.command()
def rollback(component: ComponentArg) -> None:
    """Send all traffic back to the stable version; the canary loses the challenger alias.

    In a cluster the canary stays at 0% until the stable version's new revision is ready (up to 10 minutes)."""
    state = rollout_for(component).rollback()
    console.print(f"rolled back {component} v{state['canary_version']}; stable v{state['stable_version']} serves all")


@app.command()
def abort(component: ComponentArg) -> None:
    """Stop the rollout without judging the canary version."""
    rollout_for(component).abort()
    console.print(f"aborted the canary of {component}")


@app.command()
def run(
    component: ComponentArg,
    window: Annotated[float, typer.Option(help="Seconds per analysis window.")] = 30.0,
    timeout: Annotated[float, typer.Option(help="Abort after this many seconds.")] = 1800.0,
) -> None:
    """Step automatically every window until promoted, rolled back, or paused on an unhealthy stable version."""
    state = rollout_for(component).run(window_s=window, timeout_s=timeout, progress=console.print)
    if state.get("paused"):
        console.print(
            f"{component} v{state['canary_version']}: paused at {state['share']}%, traffic unchanged: "
            f"{state['paused']}. Repair stable v{state['stable_version']}, then `step` or `run` again, or `abort`.",
            highlight=False,
        )
        raise typer.Exit(1)
    console.print(f"{component} v{state['canary_version']}: {state['outcome']}")


def main() -> None:
    try:
        app()
    except RolloutError as error:
        Console(stderr=True).print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
