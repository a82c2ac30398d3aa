"""The demo's phases up to the challenger, in the order ``cli.demo.run_demo`` runs them: the services, the
streaming job, the backlog into Feast and the live events after it, a first model served as champion, a challenger
trained on more data. Each prints its heading and lines and records its time in the result."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from cli.demo_progress import TrialProgress, wait_caught_up
from cli.demo_state import Demo, DemoOptions, DemoResult, Progress
from contract.registry import load
from local import inference_keys
from local.errors import EmbeddedError
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.progress import Phases, line_phases
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from local.synthetic_stream import LiveEvents, online_sample, timeline
from local.traffic import instances
from local.training import embedded_params, pipeline_root
from pipelines.streaming.producer import produce
from pipelines.training.runner import PipelineRun, run_local
from serving.rollout.rollout import CHALLENGER, CHAMPION, Rollout

Event = dict[str, Any]


def prepare(options: DemoOptions, progress: Progress, settings: EmbeddedSettings | None, phases: Phases | None) -> Demo:
    """The component, the settings (from the environment unless given) and the seed (new unless given)."""
    component = load(options.component)
    settings = settings or EmbeddedSettings.from_env()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1_000_000)
    return Demo(
        options=options,
        progress=progress,
        phases=phases or line_phases(progress),
        settings=settings,
        component=component,
        services=EmbeddedServices(settings),
        result=DemoResult(component=component.name, seed=seed),
    )


def start_services(demo: Demo) -> None:
    with demo.timed("services up"):
        demo.step(1, "starting the embedded services (Kafka, Redis, MLflow)")
        demo.services.up(progress=demo.indent)


def start_streaming(demo: Demo, exporter_window: tuple[float, float] | None = None) -> EmbeddedStreaming:
    """The component's streaming, reset; ``exporter_window``: the monitor's window and slide (None: shipped)."""
    name = demo.component.name
    with demo.timed("streaming job start"):
        demo.step(2, f"starting the streaming job of {name} (Flink mini-cluster, Feast pusher, event archive)")
        streaming = EmbeddedStreaming(demo.services, demo.component, flush_every_s=2.0)
        if streaming.monitor is not None:
            streaming.monitor.exporter_window = exporter_window
        # The backlog's event times end now, so the previous demo's stream is replaced: its watermark would make
        # these events late. The registry (and a champion from an earlier demo) is kept.
        streaming.reset(progress=demo.indent)
        streaming.start(progress=demo.indent)
    return streaming


def stream_backlog(
    demo: Demo, streaming: EmbeddedStreaming, live_s: float = 0.0, change_after_s: float | None = None
) -> tuple[list[Event], list[Event]]:
    """The backlog (its last event is now) into Feast; returns it and the events after it, still to come: at least
    ``live_s`` seconds of them, the world changing ``change_after_s`` from now when given."""
    options, result, name = demo.options, demo.result, demo.component.name
    with demo.timed("backlog into Feast"):
        began = time.monotonic()
        extra = max(options.events // 2, 2000, events_within(demo, live_s))
        if change_after_s is not None:
            result.change_at = time.time() + change_after_s
        backlog, future = timeline(demo.component, options.events, extra, result.seed, change_after_s)
        demo.step(
            3, f"streaming {len(backlog)} synthetic {name} events (seed {result.seed}) into Kafka -> Flink -> Feast"
        )
        with demo.phases("      events into Kafka") as sending:
            sending.start(len(backlog), "events")
            result.events_sent = produce(
                demo.component, demo.settings.kafka_bootstrap, backlog, progress=sending.update
            )
        result.produce_rate = result.events_sent / max(time.monotonic() - began, 1e-9)
        with demo.phases("      through Flink into Feast") as caught_up:
            result.status = wait_caught_up(streaming, result.events_sent, 300, caught_up)
    result.processed_rate = result.events_sent / result.phases["backlog into Feast"]
    return backlog, future


def events_within(demo: Demo, seconds: float) -> int:
    """How many of the generator's events span ``seconds`` of event time (its pace, measured on a sample)."""
    if seconds <= 0:
        return 0
    sample = list(demo.component.generate(2_000, 0, demo.result.seed))
    field_name = demo.component.streaming.events.event_time
    span_s = max((sample[-1][field_name] - sample[0][field_name]) / 1000, 1e-3)
    return int(len(sample) / span_s * seconds * 1.1) + 1


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def go_live(demo: Demo, streaming: EmbeddedStreaming, backlog: list[Event], future: list[Event]) -> LiveEvents:
    """Shows the features just arrived, as the model server will read them; then the events after the backlog
    start flowing at the generator's own pace."""
    demo.result.online_sample = online_sample(demo.component, streaming, backlog)
    for row in demo.result.online_sample[:3]:
        demo.indent("online: " + ", ".join(f"{key.split('__')[-1]}={_short(value)}" for key, value in row.items()))
    live = LiveEvents(demo.component, demo.settings.kafka_bootstrap, future)
    live.start()
    demo.indent("live events now flow at the generator's own pace while the next phases run")
    return live


def _train(
    demo: Demo,
    trials: int,
    seed: int,
    label: str,
    window_end: str = "",
    accept_ties: bool = False,
    window_start: str = "",
) -> PipelineRun:
    params = embedded_params(
        demo.settings,
        demo.component.name,
        trials=trials,
        concurrency=2,
        seed=seed,
        window_start=window_start,
        window_end=window_end,
        accept_ties=accept_ties,
    )
    with demo.phases(f"      [{label}] search") as phase:
        search = TrialProgress(
            phase, demo.component.model.metric, emit=lambda line: demo.progress(f"      [{label}] {line}")
        )
        return run_local(params, pipeline_root(demo.settings), progress=search.shown, on_output=search.output)


def _current_champion(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def first_model(demo: Demo, client: Any, backlog: list[Event], reuse: bool = True, steady: bool = False) -> None:
    """The champion an earlier demo left (with ``reuse``), or a first model trained on the older half of the
    backlog; ``steady``: on all of it after its first longest window instead, so that every window a training row
    reads is as full as the ones served later (the loop's monitor compares the two)."""
    options, result, name = demo.options, demo.result, demo.component.name
    with demo.timed("first model"):
        reused = _current_champion(client, name) if reuse else None
        if reused is not None:
            demo.step(4, f"{name} v{reused} is already champion (an earlier demo): it serves first")
            result.champion_version, result.champion_reused = reused, True
            return
        event_time = demo.component.streaming.events.event_time
        if steady:
            # A one-hour window of a stream that began half an hour ago holds half an hour: rows from before the
            # first full window would teach counts that serving, an hour later, never sees again (drift at once).
            longest = demo.component.streaming.warm_up_s
            start, end = _iso(backlog[0][event_time] + longest * 1000), ""
            if backlog[-1][event_time] - backlog[0][event_time] <= longest * 1000:
                raise EmbeddedError(
                    f"the backlog spans less than the longest window ({longest} s): stream more events (--events)"
                )
            what = f"on events after {start[11:19]} UTC (the longest window full)"
        else:
            # The first model learns from the older half of the backlog, as if trained yesterday; the challenger
            # later learns from everything streamed since, which is what retraining is for.
            start, end = "", _iso(backlog[len(backlog) // 2][event_time])
            what = f"on events before {end[11:19]} UTC"
        demo.step(4, f"training the first {name} model {what} ({options.champion_trials} trials): it will serve first")
        run = _train(demo, options.champion_trials, result.seed, "champion", window_end=end, window_start=start)
        result.trainings["champion"] = run
        if not run.decision["passed"]:
            raise EmbeddedError(f"the first {name} model was not registered: {run.decision['reason']}")
        result.champion_version = str(run.decision["version"])
        # Nothing serves yet, so there is nothing to canary against: the first model is champion directly.
        client.set_registered_model_alias(name, CHAMPION, result.champion_version)
        client.delete_registered_model_alias(name, CHALLENGER)


def serve_champion(demo: Demo, client: Any) -> tuple[EmbeddedServing, Rollout]:
    """The champion behind HAProxy, and the rollout that will canary against it (an earlier one left is aborted)."""
    with demo.timed("serve champion"):
        demo.step(
            5, f"serving {demo.component.name} v{demo.result.champion_version} (KServe model server behind HAProxy)"
        )
        serving = EmbeddedServing(demo.services, demo.component)
        backend = EmbeddedBackend(serving, progress=demo.indent)
        rollout = Rollout(backend, client, demo.options.rollout)
        leftover = rollout.state()
        if leftover and not leftover.get("outcome"):
            demo.indent(f"aborting the canary an earlier demo left at {leftover['share']}%")
            rollout.abort()
        # With the key check on (`mlstack keys create ... --embedded`), the demo's traffic calls with its own key.
        demo.headers = inference_keys.own_headers(demo.settings)
        serving.serve(demo.result.champion_version, progress=demo.indent)
        if demo.headers:
            if serving.checks_keys():
                serving.reload_keys()  # a proxy left running by an earlier demo learns the new key
            demo.indent(f"the key check is on: the demo's requests carry a key of {inference_keys.OWN_CONSUMER!r}")
    return serving, rollout


def train_challenger(demo: Demo) -> None:
    """A larger search on everything streamed so far; the gate registers it or keeps it out."""
    options, result = demo.options, demo.result
    with demo.timed("challenger"):
        policy = "better than the champion, or tied within the metric's tolerance" if options.accept_ties else "better"
        demo.step(
            6,
            f"training a challenger ({options.challenger_trials} trials, on the events streamed so far; "
            f"registered if {policy})",
        )
        run = _train(demo, options.challenger_trials, result.seed + 1, "challenger", accept_ties=options.accept_ties)
        result.trainings["challenger"] = run
        result.challenger_version = str(run.decision.get("version") or "")
        demo.indent(f"gate: {run.decision['reason']}")


def collect(
    demo: Demo, live: LiveEvents, streaming: EmbeddedStreaming, serving: EmbeddedServing, backlog: list[Event]
) -> None:
    """The streaming figures and the addresses of what is left running, for the summary (the live events keep
    flowing through the canary; the monitor's step stops them)."""
    result, settings, name = demo.result, demo.settings, demo.component.name
    result.live_events = live.sent
    result.pusher = streaming.pusher_stats()
    result.status = streaming.status()
    result.urls = {
        "model endpoint (V1)": f"{serving.endpoint}/v1/models/{name}:predict",
        "MLflow UI": settings.mlflow_url,
        "Flink web UI": f"http://127.0.0.1:{streaming.rest_port()}",
        "Kafka": settings.kafka_bootstrap,
    }
    example = json.dumps({"instances": instances(demo.component, backlog)[-1:]})  # the newest request, not a label
    result.example_request = f"curl -s -d '{example}' {result.urls['model endpoint (V1)']}"


def save_summary(demo: Demo) -> None:
    summary = demo.settings.state_dir / "reports" / f"{demo.component.name}-demo.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(demo.result.to_dict(), indent=2, default=str))
    demo.indent(f"summary saved as {summary}")
