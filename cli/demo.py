"""``make demo``: the whole lifecycle of one component on the embedded default, each phase timed.

Services up; the component's events streamed through Kafka and Flink into Feast (a backlog, then live events at
their natural pace); the training pipeline (KFP local runner, Ray Tune, MLflow) trains a first model that becomes
``champion`` and is served behind HAProxy; a second, larger search trains a challenger; if the gate registers it,
a canary rollout under generated traffic steps it up or rolls it back on measured evidence. Everything is left
running for the user to explore; a rollout report is saved as PNG.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.demo_progress import CanaryProgress, TrialProgress, wait_caught_up
from cli.train_cli import embedded_params, pipeline_root
from contract import Component
from contract.registry import load
from local.errors import EmbeddedError
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.progress import Phases, line_phases
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming, StreamingStatus
from local.traffic import TrafficGenerator, TrafficLog, instances
from pipelines.streaming.producer import produce
from pipelines.training.runner import PipelineRun, run_local
from serving.rollout.analysis import Analysis
from serving.rollout.rollout import CHALLENGER, CHAMPION, Rollout, RolloutConfig

Progress = Callable[[str], None]
PHASES = 8


@dataclass(frozen=True)
class DemoOptions:
    component: str = "fraud"
    events: int = 20_000
    """Backlog of synthetic events streamed first; its last event is 'now'."""
    seed: int | None = None
    """Seed of the generated events (None: a new one each run, printed so a run can be repeated)."""
    champion_trials: int = 2
    """A quick first search: the model that serves first."""
    challenger_trials: int = 6
    """A larger search on more data: the model the canary tries."""
    accept_ties: bool = True
    """Register the challenger when it beats the champion or ties with it within the metric's tolerance: the
    demo's stream does not change its habits, so a model retrained on more of it is usually as good, not
    better, and retraining is then about freshness, which the canary judges. False: only a strict gain."""
    traffic_rate: float = 40.0
    """Requests per second sent to the endpoint during the canary."""
    window_s: float = 5.0
    """How often the canary is analysed; a window without enough requests keeps accumulating."""
    canary_timeout_s: float = 300.0
    rollout: RolloutConfig = field(default_factory=RolloutConfig)


@dataclass
class DemoResult:
    component: str
    seed: int
    phases: dict[str, float] = field(default_factory=dict)
    events_sent: int = 0
    produce_rate: float = 0.0
    processed_rate: float = 0.0
    """Backlog events per second from the first sent until all were in Feast (produce + Flink + push)."""
    live_events: int = 0
    status: StreamingStatus | None = None
    pusher: dict[str, float] = field(default_factory=dict)
    online_sample: list[dict[str, Any]] = field(default_factory=list)
    champion_version: str = ""
    champion_reused: bool = False
    trainings: dict[str, PipelineRun] = field(default_factory=dict)
    challenger_version: str = ""
    canary: dict[str, Any] = field(default_factory=dict)
    """The rollout's final state: outcome, reason, history of analysed windows."""
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Client-side p50/p99 per served version during the canary."""
    report: Path | None = None
    urls: dict[str, str] = field(default_factory=dict)
    example_request: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (written beside the report as JSON, for scripts and tests)."""
        return {
            "component": self.component,
            "seed": self.seed,
            "phases_s": self.phases,
            "events_sent": self.events_sent,
            "live_events": self.live_events,
            "produce_rate": self.produce_rate,
            "processed_rate": self.processed_rate,
            "dead_letters": self.status.dead_letters if self.status else None,
            "pusher": self.pusher,
            "online_sample": self.online_sample,
            "champion_version": self.champion_version,
            "champion_reused": self.champion_reused,
            "trainings": {label: run.decision for label, run in self.trainings.items()},
            "challenger_version": self.challenger_version,
            "verdict": self.verdict,
            "canary": self.canary,
            "latency_ms": self.latency_ms,
            "report": str(self.report) if self.report else None,
            "urls": self.urls,
        }

    @property
    def verdict(self) -> str:
        if self.canary:
            return str(self.canary.get("outcome", ""))
        return "no canary: the challenger did not pass the gate" if self.trainings else ""


class LiveEvents:
    """Sends the generator's events after the backlog at their own pace (each when its event time comes), in a
    thread, so windows close in real time while the later phases run: that is what freshness measures."""

    def __init__(self, component: Component, bootstrap: str, events: list[dict[str, Any]]) -> None:
        self.component = component
        self.bootstrap = bootstrap
        self.events = events
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-events", daemon=True)

    def _due(self) -> Iterator[dict[str, Any]]:
        field_name = self.component.streaming.events.event_time
        for event in self.events:
            while not self._stop.is_set() and event[field_name] > time.time() * 1000:
                self._stop.wait(min(0.2, event[field_name] / 1000 - time.time()))
            if self._stop.is_set():
                return
            self.sent += 1
            yield event

    def _run(self) -> None:
        try:
            produce(self.component, self.bootstrap, self._due())
        except BaseException as error:  # reported by stop(): a thread cannot raise into the demo
            self.error = error

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise EmbeddedError(f"live events of {self.component.name} stopped: {self.error}")
        return self.sent


def _phase(result: DemoResult, name: str, began: float) -> None:
    result.phases[name] = time.monotonic() - began


def timeline(component: Component, n_events: int, extra: int, seed: int) -> tuple[list[dict[str, Any]], ...]:
    """The generator's events shifted so that the backlog's last event is now; the rest lie in the future."""
    field_name = component.streaming.events.event_time
    events = list(component.generate(n_events + extra, 0, seed))
    shift = int(time.time() * 1000) - events[n_events - 1][field_name]
    for event in events:
        event[field_name] += shift
    return events[:n_events], events[n_events:]


def _online_sample(component: Component, streaming: EmbeddedStreaming, events: list[dict[str, Any]]) -> list[Any]:
    group = component.streaming.groups[0]
    entities = list(dict.fromkeys(e[group.entity] for e in reversed(events)))[:5]
    refs = [f"{g.name}:{f}" for g in component.streaming.groups if g.entity == group.entity for f in g.feature_names()]
    online = (
        streaming.feature_store()
        .get_online_features(
            features=refs[:4], entity_rows=[{group.entity: e} for e in entities], full_feature_names=True
        )
        .to_dict()
    )
    return [{k: v[i] for k, v in online.items()} for i in range(len(entities))]


def _train(
    settings: EmbeddedSettings,
    component: Component,
    trials: int,
    seed: int,
    label: str,
    progress: Progress,
    phases: Phases,
    window_end: str = "",
    accept_ties: bool = False,
) -> PipelineRun:
    params = embedded_params(
        settings,
        component.name,
        trials=trials,
        concurrency=2,
        seed=seed,
        window_end=window_end,
        accept_ties=accept_ties,
    )
    with phases(f"      [{label}] search") as phase:
        search = TrialProgress(phase, component.model.metric, emit=lambda line: progress(f"      [{label}] {line}"))
        return run_local(params, pipeline_root(settings), progress=search.shown, on_output=search.output)


def _current_champion(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _quantiles_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"requests": float(len(ordered)), "p50": pick(0.5), "p99": pick(0.99)}


def run_demo(
    options: DemoOptions,
    progress: Progress,
    settings: EmbeddedSettings | None = None,
    phases: Phases | None = None,
) -> DemoResult:
    """Run the demo; leaves the services, the streaming job and the model endpoint running.

    ``progress`` gets the demo's lines; ``phases`` shows its long phases (the backlog, each search's trials, the
    canary's steps): bars on a terminal (``local.progress.bar_phases``), by default a few lines via ``progress``.
    """
    phases = phases or line_phases(progress)
    from mlflow import MlflowClient

    component: Component = load(options.component)
    settings = settings or EmbeddedSettings.from_env()
    services = EmbeddedServices(settings)
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1_000_000)
    result = DemoResult(component=component.name, seed=seed)

    def step(number: int, text: str) -> None:
        progress(f"[{number}/{PHASES}] {text}")

    def indent(line: str) -> None:
        progress(f"      {line}")

    began = time.monotonic()
    step(1, "starting the embedded services (Kafka, Redis, MLflow)")
    services.up(progress=indent)
    _phase(result, "services up", began)

    began = time.monotonic()
    step(2, f"starting the streaming job of {component.name} (Flink mini-cluster, Feast pusher, event archive)")
    streaming = EmbeddedStreaming(services, component, flush_every_s=2.0)
    # The backlog's event times end now, so the previous demo's stream is replaced: its watermark would make
    # these events late. The registry (and a champion from an earlier demo) is kept.
    streaming.reset(progress=indent)
    streaming.start(progress=indent)
    _phase(result, "streaming job start", began)

    began = time.monotonic()
    backlog, future = timeline(component, options.events, max(options.events // 2, 2000), seed)
    step(3, f"streaming {len(backlog)} synthetic {component.name} events (seed {seed}) into Kafka -> Flink -> Feast")
    with phases("      events into Kafka") as sending:
        sending.start(len(backlog), "events")
        result.events_sent = produce(component, settings.kafka_bootstrap, backlog, progress=sending.update)
    result.produce_rate = result.events_sent / max(time.monotonic() - began, 1e-9)
    with phases("      through Flink into Feast") as caught_up:
        result.status = wait_caught_up(streaming, result.events_sent, 300, caught_up)
    _phase(result, "backlog into Feast", began)
    result.processed_rate = result.events_sent / result.phases["backlog into Feast"]
    result.online_sample = _online_sample(component, streaming, backlog)
    for row in result.online_sample[:3]:  # the features just arrived, as the model server will read them
        indent("online: " + ", ".join(f"{key.split('__')[-1]}={_short(value)}" for key, value in row.items()))
    live = LiveEvents(component, settings.kafka_bootstrap, future)
    live.start()
    indent("live events now flow at the generator's own pace while the next phases run")

    client = MlflowClient(settings.mlflow_url)
    began = time.monotonic()
    reused = _current_champion(client, component.name)
    if reused is not None:
        step(4, f"{component.name} v{reused} is already champion (an earlier demo): it serves first")
        result.champion_version, result.champion_reused = reused, True
    else:
        # The first model learns from the older half of the backlog, as if trained yesterday; the challenger
        # later learns from everything streamed since, which is what retraining is for.
        cut_ms = backlog[len(backlog) // 2][component.streaming.events.event_time]
        cut = datetime.fromtimestamp(cut_ms / 1000, tz=UTC).isoformat()
        step(
            4,
            f"training the first {component.name} model on events before {cut[11:19]} UTC "
            f"({options.champion_trials} trials): it will serve first",
        )
        run = _train(settings, component, options.champion_trials, seed, "champion", progress, phases, window_end=cut)
        result.trainings["champion"] = run
        if not run.decision["passed"]:
            raise EmbeddedError(f"the first {component.name} model was not registered: {run.decision['reason']}")
        result.champion_version = str(run.decision["version"])
        # Nothing serves yet, so there is nothing to canary against: the first model is champion directly.
        client.set_registered_model_alias(component.name, CHAMPION, result.champion_version)
        client.delete_registered_model_alias(component.name, CHALLENGER)
    _phase(result, "first model", began)

    began = time.monotonic()
    step(5, f"serving {component.name} v{result.champion_version} (KServe model server behind HAProxy)")
    serving = EmbeddedServing(services, component)
    backend = EmbeddedBackend(serving, progress=indent)
    rollout = Rollout(backend, client, options.rollout)
    leftover = rollout.state()
    if leftover and not leftover.get("outcome"):
        indent(f"aborting the canary an earlier demo left at {leftover['share']}%")
        rollout.abort()
    serving.serve(result.champion_version, progress=indent)
    _phase(result, "serve champion", began)

    began = time.monotonic()
    policy = "better than the champion, or tied within the metric's tolerance" if options.accept_ties else "better"
    step(
        6,
        f"training a challenger ({options.challenger_trials} trials, on the events streamed so far; "
        f"registered if {policy})",
    )
    run = _train(
        settings,
        component,
        options.challenger_trials,
        seed + 1,
        "challenger",
        progress,
        phases,
        accept_ties=options.accept_ties,
    )
    result.trainings["challenger"] = run
    result.challenger_version = str(run.decision.get("version") or "")
    indent(f"gate: {run.decision['reason']}")
    _phase(result, "challenger", began)

    result.live_events = live.stop()
    result.pusher = streaming.pusher_stats()
    result.status = streaming.status()
    result.urls = {
        "model endpoint (V1)": f"{serving.endpoint}/v1/models/{component.name}:predict",
        "MLflow UI": settings.mlflow_url,
        "Flink web UI": f"http://127.0.0.1:{streaming.rest_port()}",
        "Kafka": settings.kafka_bootstrap,
    }
    example = json.dumps({"instances": instances(component, backlog[-1:])})
    result.example_request = f"curl -s -d '{example}' {result.urls['model endpoint (V1)']}"

    if result.challenger_version:
        began = time.monotonic()
        step(7, f"canary of v{result.challenger_version} under {options.traffic_rate:.0f} requests/s")
        rows = instances(component, (backlog + future[: result.live_events])[-2000:])
        analyses: list[tuple[float, Analysis]] = []
        with TrafficGenerator(
            f"{serving.endpoint}/v1/models/{component.name}:predict", rows, rate=options.traffic_rate
        ) as traffic:
            stable_slot = serving.slots()["stable"]
            slots = {stable_slot: result.champion_version, serving.canary_slot(stable_slot): result.challenger_version}
            rollout.start(result.challenger_version)  # returns once the canary's server is ready and weighted
            started_at = time.time()
            with phases("      canary") as steps:
                steps.start(len(options.rollout.schedule), "steps")
                canary = CanaryProgress(steps, rollout, indent)

                def on_step(analysis: Analysis) -> None:
                    analyses.append((time.time(), analysis))
                    canary.window(analysis)

                result.canary = rollout.run(
                    window_s=options.window_s, timeout_s=options.canary_timeout_s, progress=canary.line, on_step=on_step
                )
            time.sleep(2)  # a little traffic after the decision, for the report
        result.canary.update(started_at=started_at, slots=slots)
        result.latency_ms = _latency_by_version(traffic.log, slots)
        _phase(result, "canary", began)
        step(8, "rollout report")
        from local.rollout_report import plot_rollout

        result.report = plot_rollout(
            component.name,
            traffic.log,
            result.canary,
            analyses,
            settings.state_dir / "reports" / f"{component.name}-rollout-{time.strftime('%Y%m%d-%H%M%S')}.png",
        )
        indent(f"saved {result.report}")
    else:
        step(7, "no canary: the gate kept the challenger out of the registry (see its reason above)")
    summary = settings.state_dir / "reports" / f"{component.name}-demo.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    indent(f"summary saved as {summary}")
    return result


def _latency_by_version(log: TrafficLog, slots: dict[str, str]) -> dict[str, dict[str, float]]:
    """Client-side latency per version: the slot HAProxy chose for a response, mapped to the version it served."""
    by_version: dict[str, list[float]] = {}
    for response in log.responses:
        version = slots.get(response.slot, response.slot)
        if response.status == 200:
            by_version.setdefault(f"v{version}", []).append(response.latency_s)
    return {version: _quantiles_ms(values) for version, values in by_version.items()}
