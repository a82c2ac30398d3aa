"""What a demo is asked to do (``DemoOptions``), what it found (``DemoResult``, also saved as JSON for scripts and
tests), and what its phases share while it runs (``Demo``: the outputs, the engines' settings, the result)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract import Component
from local.progress import Phases
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import StreamingStatus
from pipelines.training.runner import PipelineRun
from serving.rollout.analysis import STABLE_UNHEALTHY
from serving.rollout.rollout import PAUSED, RolloutConfig

Progress = Callable[[str], None]
PHASES = 9


CHANGE_AFTER_S = 540.0
"""The loop's default change, nine minutes after the backlog: the champion serves and its first 200 labels have come
back, so its live metric before the change is the loop's reference. Seven minutes left one to spare, and on a
machine busy with other work the first live metric came after the change."""


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
    monitor_wait_s: float = 150.0
    """After the canary, how long live events keep flowing while the demo waits for the monitor's first live
    metric (labels come back minutes after their predictions)."""
    drift: bool = False
    """The closed loop instead (``cli.demo_loop``): the world changes after the champion serves, and the platform
    notices, retrains and canaries by itself."""
    change_after_s: float | None = CHANGE_AFTER_S
    """The loop: seconds from the backlog's end to the world's change (None: it never changes, a control run)."""
    loop_timeout_s: float = 1800.0
    """The loop: how long after the champion serves the demo waits for the loop to close (a control run: how long
    it watches)."""
    recovery_s: float = 240.0
    """The loop: how long live events keep flowing after the promotion, to show the live metric recover."""


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
    canary_responses: dict[str, int] = field(default_factory=dict)
    """Client-side, from the canary's start to its decision: ``sent`` requests and ``ok`` (HTTP 200) answers."""
    report: Path | None = None
    live_scoring: dict[str, int] = field(default_factory=dict)
    """Live events scored as they happened: ``sent``, ``ok``, ``failed``, ``dropped`` (queue full)."""
    monitor: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per version, the monitor's figures at the end: live metric and labelled count, holdout, top drift."""
    model_report: Path | None = None
    change_at: float | None = None
    """The loop: when the world changes (epoch seconds), None when it does not."""
    loop: dict[str, Any] = field(default_factory=dict)
    """The loop: its transitions, the times from the change to each, and the live metric before and after."""
    loop_report: Path | None = None
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
            "failure": self.failure,
            "canary": self.canary,
            "canary_responses": self.canary_responses,
            "latency_ms": self.latency_ms,
            "report": str(self.report) if self.report else None,
            "live_scoring": self.live_scoring,
            "monitor": self.monitor,
            "model_report": str(self.model_report) if self.model_report else None,
            "change_at": self.change_at,
            "loop": self.loop,
            "loop_report": str(self.loop_report) if self.loop_report else None,
            "urls": self.urls,
        }

    @property
    def verdict(self) -> str:
        if self.canary.get("paused"):
            return PAUSED
        if self.canary:
            return str(self.canary.get("outcome", ""))
        return "no canary: the challenger did not pass the gate" if self.trainings else ""

    @property
    def failure(self) -> str:
        """Why the demo failed though every phase ran ("" when it did not): the stable version was unhealthy
        during the canary, or no prediction succeeded in it. Either way its verdict is not about the challenger,
        and ``mlstack demo`` exits non-zero with this as the reason."""
        unhealthy = self.canary.get("paused") or next(
            (
                "; ".join(entry["reasons"])
                for entry in self.canary.get("history", [])
                if entry["verdict"] == STABLE_UNHEALTHY
            ),
            "",
        )
        if unhealthy:
            return f"the stable version v{self.champion_version} was unhealthy during the canary: {unhealthy}"
        sent = self.canary_responses.get("sent", 0)
        if sent and not self.canary_responses.get("ok", 0):
            return (
                f"every prediction failed during the canary ({sent} requests, none answered): both versions, or "
                "what they share (features, the component's code, the proxy), are broken"
            )
        return ""


@dataclass
class Demo:
    """One demo run as its phases see it: what was asked, where lines and long phases go, the component, the
    embedded services and settings, and the result the phases fill in."""

    options: DemoOptions
    progress: Progress
    phases: Phases
    """The long phases' progress (bars on a terminal, a few lines elsewhere)."""
    settings: EmbeddedSettings
    component: Component
    services: EmbeddedServices
    result: DemoResult
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with the demo's own requests: a key of its own when the inference key check is on."""

    def step(self, number: int, text: str) -> None:
        """A phase's heading, ``[n/9] text``."""
        self.progress(f"[{number}/{PHASES}] {text}")

    def indent(self, line: str) -> None:
        """A line within a phase."""
        self.progress(f"      {line}")

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Records the seconds the block took as ``result.phases[phase]`` (not when it raises)."""
        began = time.monotonic()
        yield
        self.result.phases[phase] = time.monotonic() - began
