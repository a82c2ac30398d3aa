"""``mlstack demo``: the main job, and the summary a person reads at the end."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.demo import DemoOptions, DemoResult, run_demo
from cli.demo_loop import loop_lines, run_loop_demo
from cli.demo_state import CHANGE_AFTER_S
from cli.rollout_options import rollout_config
from cli.status_table import status_table
from local.progress import bar_phases
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from serving.rollout.analysis import AnalysisConfig

console = Console(width=None if sys.stdout.isatty() else 180)


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def print_summary(result: DemoResult, services: EmbeddedServices | None = None) -> None:
    if result.online_sample:
        sample = Table(title="online features in Feast (newest window per entity)", title_justify="left")
        for column in result.online_sample[0]:
            sample.add_column(column)
        for row in result.online_sample:
            sample.add_row(*(_fmt(v) for v in row.values()))
        console.print(sample)

    where = Table(title="what ran where", title_justify="left")
    where.add_column("step")
    where.add_column("engine (local processes)")
    for step, engine in (
        ("events", f"Kafka broker (KRaft) at {result.urls.get('Kafka', '?')}: topic {result.component}.events"),
        ("features", "PyFlink job (Flink mini-cluster) -> Feast push -> Redis online store + parquet history"),
        ("training", "KFP v2 pipeline on the KFP local runner; Ray Tune (ASHA) search; MLflow tracking + registry"),
        ("serving", "KServe model servers (stable and canary slots) behind HAProxy, weighted"),
        ("rollout", "kubectl-canary's rollout: analysis of the servers' Prometheus metrics, MLflow aliases"),
    ):
        where.add_row(step, engine)
    console.print(where)

    numbers = Table(title=f"demo summary: {result.component} (seed {result.seed})", title_justify="left")
    numbers.add_column("what")
    numbers.add_column("figure")
    numbers.add_row("events streamed", f"{result.events_sent} backlog + {result.live_events} live")
    numbers.add_row(
        "backlog events/s",
        f"{result.produce_rate:.0f} sent; {result.processed_rate:.0f} from the first sent to the last in Feast "
        "(a small backlog: mostly the job's start-up and checkpoint interval; `make bench` measures throughput)",
    )
    if result.status:
        numbers.add_row("dead letters", str(result.status.dead_letters))
    live = result.pusher.get("live_windows", 0)
    if live:
        numbers.add_row(
            "feature freshness (live windows)",
            f"p50 {result.pusher['live_freshness_p50_s']:.2f}s, p99 {result.pusher['live_freshness_p99_s']:.2f}s "
            f"over {live:.0f} windows (window close -> online)",
        )
    for label, run in result.trainings.items():
        decision = run.decision
        score = f"holdout {decision['metric']} {decision['holdout_score']:.4f}"
        if decision.get("baseline_score") is not None:
            score += f" (naive baseline {decision['baseline_score']:.4f})"
        version = f"v{decision['version']}" if decision.get("version") else "not registered"
        numbers.add_row(f"{label} model", f"{version}: {score}; pipeline {run.wall_s:.0f}s")
    if result.champion_reused:
        numbers.add_row("champion", f"v{result.champion_version}, kept from an earlier demo")
    for version, figures in result.latency_ms.items():
        if figures:
            numbers.add_row(
                f"latency {version} (client side)",
                f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms over {figures['requests']:.0f} requests",
            )
    verdict = result.verdict
    if result.canary.get("reason") or result.canary.get("paused"):
        verdict += f" ({result.canary.get('reason') or result.canary['paused']})"
    numbers.add_row("canary verdict", verdict or "-")
    if result.report:
        numbers.add_row("rollout report", str(result.report))
    if result.live_scoring:
        scored = result.live_scoring
        numbers.add_row(
            "live events scored",
            f"{scored['ok']} answered of {scored['sent']} sent "
            f"({scored['failed']} failed, {scored['dropped']} dropped)",
        )
    for version, row in sorted(result.monitor.items()):
        numbers.add_row(f"monitor v{version}", row["text"])
    if result.model_report:
        numbers.add_row("model panel", str(result.model_report))
    if result.loop:
        for index, line in enumerate(loop_lines(result.loop, result.loop.get("metric", "metric"))):
            numbers.add_row("closed loop" if index == 0 else "", line)
    if result.loop_report:
        numbers.add_row("loop report", str(result.loop_report))
    for phase, seconds in result.phases.items():
        numbers.add_row(f"phase: {phase}", f"{seconds:.1f}s")
    numbers.add_row("total", f"{sum(result.phases.values()):.1f}s")
    console.print(numbers)

    if services is not None:  # what is left running, as `make services-status` shows it
        console.print(status_table(services.status()))
        console.print(status_table(services.programs(), "component programs (streaming, model servers, proxies)"))
    left = Table(title="left running for you", title_justify="left", show_header=False)
    for name, url in result.urls.items():
        left.add_row(name, url)
    if result.example_request:
        left.add_row("try a prediction", result.example_request)
    left.add_row("stop everything", "make services-down")
    console.print(left)


def demo(
    component: Annotated[str, typer.Option(help="Use case to run (a package in components/).")] = "fraud",
    events: Annotated[int, typer.Option(help="Synthetic events streamed before training.")] = 20_000,
    seed: Annotated[int | None, typer.Option(help="Seed of the events (default: a new one, printed).")] = None,
    trials: Annotated[int, typer.Option(help="Search trials of the first model.")] = 2,
    challenger_trials: Annotated[int, typer.Option(help="Search trials of the challenger.")] = 6,
    rate: Annotated[float, typer.Option(help="Requests per second during the canary.")] = 40.0,
    schedule: Annotated[str, typer.Option(help="Canary shares in percent, rising to 100.")] = "10,25,50,100",
    min_requests: Annotated[int, typer.Option(help="Requests per version before a window is judged.")] = 100,
    monitor_wait: Annotated[
        float,
        typer.Option(help="Seconds to wait after the canary for the monitor's first live metric (labels come late)."),
    ] = 150.0,
    live_evidence: Annotated[
        str,
        typer.Option(
            help="What the canary must show on live labels before it takes all traffic: off (the default here: "
            "labels come minutes after the demo's canary, and the monitor step shows them), 'not worse', or better."
        ),
    ] = "off",
    drift: Annotated[
        bool,
        typer.Option(
            "--drift",
            help="The closed loop instead: the world changes after the champion serves; the platform notices, "
            "retrains and canaries on live labels by itself (about 35 minutes for fraud).",
        ),
    ] = False,
    change_after: Annotated[
        float, typer.Option(help="--drift: seconds from the backlog's end to the change; 0: no change (control).")
    ] = CHANGE_AFTER_S,
    loop_timeout: Annotated[float, typer.Option(help="--drift: minutes to wait for the loop to close.")] = 30.0,
    strict_gate: Annotated[
        bool,
        typer.Option(
            help="Register the challenger only if it beats the champion (default: a tie within the metric's "
            "tolerance is registered too, and its canary decides)."
        ),
    ] = False,
) -> None:
    """The whole lifecycle on the embedded default; Ctrl-C stops everything it started."""
    rollout = rollout_config(schedule, min_requests, live_evidence, AnalysisConfig().live_min_labels)
    options = DemoOptions(
        component=component,
        events=events,
        seed=seed,
        champion_trials=trials,
        challenger_trials=challenger_trials,
        accept_ties=not strict_gate,
        traffic_rate=rate,
        rollout=rollout,
        monitor_wait_s=monitor_wait,
        drift=drift,
        change_after_s=change_after or None,
        loop_timeout_s=loop_timeout * 60,
    )
    services = EmbeddedServices(EmbeddedSettings.from_env())
    if console.is_terminal:
        # Pinned: the training runner swaps sys.stdout for its log while a search runs, and the bars and lines
        # must stay on the terminal rather than be drawn into that log.
        console.file = sys.stdout
    try:
        # markup off: "[champion] ..." is the demo's text, not a rich style tag.
        result = (run_loop_demo if drift else run_demo)(
            options,
            progress=lambda line: console.print(line, highlight=False, markup=False),
            phases=bar_phases(console) if console.is_terminal else None,
        )
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything the demo started")
        services.down(progress=lambda line: console.print(f"  {line}"))
        raise
    print_summary(result, services)
    if result.failure:
        console.print(f"demo failed: {result.failure}", highlight=False, markup=False)
        raise typer.Exit(1)
