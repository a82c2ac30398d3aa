"""``mlstack demo --drift`` (``make demo-drift``): the closed loop on the embedded default, with a person watching
rather than doing.

The demo's first phases (services, streaming, a backlog, a first model served as champion, each live event scored
as it happens), then the world changes (the generator's regime change, ``change_after_s`` after the backlog) and the
platform does the rest by itself: the monitor's alert reaches Alertmanager and the retraining trigger, which waits for
the labels of the changed world, trains, and canaries the registered challenger, promoting it only on live labels
that show it better; the live metric recovers. The drill's times (``local.loop_drill``) shorten each step's wait,
not what it does. A control run (``change_after_s=None``) watches a world that does not change for as long.

The report draws the live metric per version with a mark for each transition (``local.loop_report``); the summary
gives the times from the change to the alert, the registered challenger and the promotion, and the live metric
before and after.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

from cli import demo_monitor, demo_steps
from cli.demo_state import Demo, DemoOptions, DemoResult, Progress
from local.dashboard_report import Prometheus
from local.errors import EmbeddedError
from local.loop_drill import (
    DRILL_EXPORTER_WINDOW,
    LoopEvent,
    LoopWatch,
    Transitions,
    drill_settings,
    transitions_in_order,
)
from local.loop_report import VersionSeries, live_series, plot_loop
from local.model_serving import EmbeddedServing
from local.progress import Phases
from local.settings import EmbeddedSettings
from monitoring import metrics as m
from monitoring.alert_rules import REASON
from monitoring.retrain_trigger import RETRAINABLE

POLL_S = 5.0
TRAINING_S = 1200
"""The first model's training span after the longest window has filled."""
STATUS_EVERY_S = 60.0
DRILLED = ("retrain", "alertmanager", "prometheus")
"""The services whose configuration the drill changes (restarted with it)."""
DRILL_EVENTS = 64_000
"""Eighty minutes of fraud: the first model learns from the last of it, after its one-hour windows filled."""
DRILL_WATCHED_S = 31 * 60
"""How long a drill's run may be watched from the moment its first model serves: the loop must close within it (it
took 18-19 minutes from the change, nine minutes after the backlog), and the control watches all of it."""


def drill_options(component: str, seed: int) -> DemoOptions:
    """The loop as its test and benchmark run it: the default change, a minute and a half of recovery."""
    return DemoOptions(
        component=component,
        events=DRILL_EVENTS,
        seed=seed,
        champion_trials=2,
        drift=True,
        loop_timeout_s=DRILL_WATCHED_S,
        recovery_s=90.0,
    )


def control_arguments(component: str, seed: int) -> list[str]:
    """``mlstack demo`` arguments of the loop's control, as a person runs it: the same drill (``drill_options``) on
    a world that does not change, watched for as long."""
    return [
        *("--drift", "--component", component, "--events", str(DRILL_EVENTS), "--seed", str(seed), "--trials", "2"),
        *("--change-after", "0", "--loop-timeout", str(DRILL_WATCHED_S / 60)),
    ]


def run_loop_demo(
    options: DemoOptions, progress: Progress, settings: EmbeddedSettings | None = None, phases: Phases | None = None
) -> DemoResult:
    """Run the loop (or, with ``options.change_after_s`` None, the control run); leaves everything running."""
    from mlflow import MlflowClient

    demo = demo_steps.prepare(options, progress, drill_settings(settings or EmbeddedSettings.from_env()), phases)
    # The first model learns after the longest window has filled once, on twenty minutes of the world before it.
    longest = demo.component.streaming.warm_up_s
    needed = demo_steps.events_within(demo, longest + TRAINING_S)
    if options.events < needed:
        demo.options = replace(options, events=needed)
        progress(
            f"backlog raised to {needed} events: the longest window ({longest} s) and {TRAINING_S // 60} min after"
        )
    demo_steps.start_services(demo)
    demo.indent("the drill's alert and retraining times: " + _drill_text(demo.settings))
    demo.services.reconfigure(DRILLED, progress=demo.indent)
    streaming = demo_steps.start_streaming(demo, exporter_window=DRILL_EXPORTER_WINDOW)
    options = demo.options
    horizon = (options.change_after_s or 0) + options.loop_timeout_s + options.recovery_s
    backlog, future = demo_steps.stream_backlog(demo, streaming, live_s=horizon, change_after_s=options.change_after_s)
    live = demo_steps.go_live(demo, streaming, backlog, future)
    client = MlflowClient(demo.settings.mlflow_url)
    demo_steps.first_model(demo, client, backlog, reuse=False, steady=True)  # the world before its change
    serving, _ = demo_steps.serve_champion(demo, client)
    serving_since = time.time()
    scorer = demo_monitor.score_live(demo, live, serving)
    watch = LoopWatch(demo.settings, serving, demo.result.champion_version, serving_since)
    try:
        with demo.timed("loop"):
            _watch(demo, watch)
    finally:
        demo.result.live_events = live.stop()
        demo.result.live_scoring = scorer.stop().as_dict()
    _report(demo, watch, serving, serving_since)
    demo_steps.save_summary(demo)
    return demo.result


def _drill_text(settings: EmbeddedSettings) -> str:
    rules, retraining = settings.alerting.rules, settings.retraining
    return (
        f"drift and performance alerts after {rules.drift_for} and {rules.performance_for} (shipped: 15m, 30m); "
        f"runs of {retraining.trials} trials; canary {'/'.join(map(str, retraining.schedule))}%, promoted on live "
        f"labels showing it {retraining.live_evidence}"
    )


def _watch(demo: Demo, watch: LoopWatch) -> None:
    """Until the loop closes and the live metric has had time to recover, or the time is up."""
    result, options = demo.result, demo.options
    change = result.change_at
    if change is not None:
        demo.step(6, f"the world changes at {time.strftime('%H:%M:%S', time.localtime(change))}; nobody acts now")
    else:
        demo.step(6, f"a world that does not change, watched for {options.loop_timeout_s / 60:.0f} minutes")
    deadline = time.time() + options.loop_timeout_s
    closed_at: float | None = None
    next_status = time.time() + STATUS_EVERY_S

    def emit(event: LoopEvent) -> None:
        after = f"+{(event.at - change) / 60:.1f} min" if change is not None else time.strftime("%H:%M:%S")
        demo.indent(f"[{after}] {event.text}")

    while time.time() < deadline and (closed_at is None or time.time() < closed_at + options.recovery_s):
        if change is not None and time.time() >= change and watch.first("change") is None:
            watch.events.append(LoopEvent(change, "change", "the world changed (the generator's regime change)"))
            emit(watch.events[-1])
        for event in watch.poll(emit):
            if event.kind == "retraining" and watch.first("retraining") is event:
                demo.step(7, "retraining started by itself; the trigger canaries what the gate registers")
            if event.kind in ("promoted", "rolled back") and closed_at is None:
                closed_at = time.time()
                if event.kind == "promoted":
                    demo.step(8, f"promoted: live events flow {options.recovery_s / 60:.0f} more minutes (recovery)")
        if time.time() >= next_status:
            next_status += STATUS_EVERY_S
            demo.indent(_status_line(demo))
        time.sleep(POLL_S)
    if change is not None and closed_at is None:
        demo.indent(f"the loop did not close within {options.loop_timeout_s / 60:.0f} minutes")


def _status_line(demo: Demo) -> str:
    """The monitor's figures now, as Prometheus has them: each version's live metric."""
    query = f'{m.LIVE_METRIC.name}{{{m.COMPONENT}="{demo.component.name}"}}'
    try:
        found = Prometheus(demo.settings.prometheus_url).query(query)
    except EmbeddedError as error:
        return f"monitor: {error}"
    if not found:
        return "monitor: no live metric yet (labels come back minutes after their predictions)"
    live = {r["metric"].get(m.VERSION, "?"): float(r["value"][1]) for r in found}
    return "monitor: " + ", ".join(f"v{v} live {value:.3f}" for v, value in sorted(live.items()))


def _report(demo: Demo, watch: LoopWatch, serving: EmbeddedServing, since: float) -> None:
    """The picture and the figures: times from the change, live metric before and after."""
    result, name = demo.result, demo.component.name
    demo.step(9, "the loop's report")
    metric = demo.component.model.metric.name
    end = time.time()
    try:
        series = live_series(Prometheus(demo.settings.prometheus_url), name, since, end, 10.0)
        path = demo.settings.state_dir / "reports" / f"{name}-loop-{time.strftime('%Y%m%d-%H%M%S')}.png"
        result.loop_report = plot_loop(name, metric, series, watch.events, since, path)
        demo.indent(f"saved {result.loop_report}")
    except EmbeddedError as error:
        series = []
        demo.indent(f"no picture: {error}")
    figures = loop_figures(watch, result.change_at, series, result.champion_version)
    result.loop = {"metric": metric, "watched_s": result.phases.get("loop", 0.0), **figures}
    for line in loop_lines(result.loop, metric):
        demo.indent(line)


def loop_figures(
    watch: Transitions, change: float | None, series: list[VersionSeries], champion: str
) -> dict[str, Any]:
    """The transitions in order, minutes from the change to each, and the live metric of the champion before
    the change and at its worst after it, and of the version serving at the end."""
    firsts = {kind: event.at for kind in ("alert", "retraining", "registered", "promoted", "rolled back")
              if (event := watch.first(kind)) is not None}  # fmt: skip
    retrainable = [e for e in watch.events if e.kind == "alert" and e.detail.get(REASON) in RETRAINABLE]
    figures: dict[str, Any] = {
        "events": [{"at": e.at, "kind": e.kind, "text": e.text} for e in watch.events],
        "order": transitions_in_order(watch.events),
        "alerts": len([e for e in watch.events if e.kind == "alert"]),
        "retrainable_alerts": len(retrainable),
        "runs": len([e for e in watch.events if e.kind == "retraining"]),
    }
    if change is not None:
        figures["minutes_from_change"] = {kind: (at - change) / 60 for kind, at in firsts.items()}
    by_version = {s.version: s for s in series}
    old = by_version.get(champion)
    if old is not None and change is not None:
        before = [v for t, v in zip(old.times, old.values, strict=True) if t <= change]
        after = [v for t, v in zip(old.times, old.values, strict=True) if t > change]
        figures["champion_before"] = before[-1] if before else math.nan
        figures["champion_after_worst"] = min(after) if after else math.nan
    promoted = watch.first("promoted")
    if promoted is not None:
        new = by_version.get(str(promoted.detail.get("v")))
        if new is not None and new.values:
            figures["promoted_at_end"] = new.values[-1]
    return figures


def loop_lines(figures: dict[str, Any], metric: str) -> list[str]:
    """The figures as lines for a person."""
    lines = [f"transitions in order: {' -> '.join(figures.get('order', [])) or 'none'}"]
    lines.append(
        f"alerts {figures.get('alerts', 0)} ({figures.get('retrainable_alerts', 0)} a new model fixes), "
        f"retraining runs {figures.get('runs', 0)}"
    )
    minutes = figures.get("minutes_from_change", {})
    if minutes:
        lines.append("minutes from the change: " + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items()))
    if "champion_before" in figures:
        text = f"live {metric}: champion {figures['champion_before']:.3f} before the change, "
        text += f"{figures.get('champion_after_worst', math.nan):.3f} at its worst after"
        if "promoted_at_end" in figures:
            text += f"; the promoted model {figures['promoted_at_end']:.3f} at the end"
        lines.append(text)
    return lines
