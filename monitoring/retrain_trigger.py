"""The retraining trigger: Alertmanager's webhook that starts a component's training pipeline, and its canary.

What it acts on, and what it only notes (every decision is logged and counted either way):

- a *firing* alert whose ``reason`` is drift, performance or quality and that names a ``component`` starts a run;
  freshness and serving alerts are noted (a new model fixes neither), as are resolutions;
- Alertmanager notifies a firing alert again at every group interval and repeat: one alert (its fingerprint and
  start) acts at most once (``duplicate``);
- one run per component at a time: while its run (training, then the canary of what the gate registered) is under
  way, the component's alerts are noted (``busy``);
- a cooldown after each run: the monitor's windows must fill with the new version's traffic before its alerts
  mean anything, so alerts within ``cooldown_s`` of the last run's end are noted (``cooldown``);
- a manual request (``mlstack retrain <component> --reason ...``) skips the cooldown, never the one-run rule.

The run itself is the mode's: a ``Launcher`` runs the pipeline (the KFP local runner in embedded mode, a run
through the KFP API in the cluster) with the cause as its ``reason`` parameter, which training records on the
MLflow run and the version it registers (``mlstack.reason``), then drives the challenger's canary. This module knows
neither mode; ``cli/retrain_cli.py`` gives it one.

HTTP: ``POST /alerts`` (an Alertmanager webhook payload, version 4), ``POST /retrain`` (``{"component": ...,
"reason": ...}``), ``GET /decisions`` (``?component=``), ``GET /metrics``, ``GET /-/healthy``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from monitoring import metrics as m
from monitoring.alert_receiver import MAX_BODY, WEBHOOK_PATH, BadPayload, alerts_of

RETRAINABLE = ("drift", "performance", "quality")
"""Alert families a new model can fix (``monitoring.alert_rules``' ``reason`` label)."""
RETRAIN_PATH = "/retrain"
DEFAULT_COOLDOWN_S = 1800.0

Action = Literal["started", "skipped", "finished"]
Progress = Callable[[str], None]


def _now_iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass(frozen=True)
class Cause:
    """Why a run starts: recorded on the pipeline run and the version it registers."""

    source: Literal["alert", "manual", "schedule"]
    summary: str
    """One line a person reads, e.g. ``FeatureDrift: PSI 0.41 for fraud v3 feature amount``."""
    at: str
    """When the trigger acted (UTC, ISO 8601)."""
    alert: dict[str, str] = field(default_factory=dict)
    """The alert's labels (alertname, component, version, reason, severity, ...); empty unless from an alert."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the pipeline run, the version the gate registered (empty: none), the canary's outcome."""

    run_id: str
    version: str
    outcome: str
    """``promoted``, ``rolled back``, ``not registered``, ``no canary: <why>`` or ``failed: <error>``."""


class Launcher(Protocol):
    """Runs a component's training pipeline with ``cause`` and then the canary of what it registered (blocking)."""

    def retrain(self, component: str, cause: Cause, progress: Progress) -> RunResult: ...


@dataclass(frozen=True)
class Decision:
    """One line of the decision log."""

    at: str
    component: str
    action: Action
    cause: str
    """What asked: ``alert``, ``manual`` or ``schedule``."""
    detail: str
    """Why this action: the cause's summary when started, the rule that held it back when skipped, the outcome
    when finished."""
    alert: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    version: str = ""


@dataclass(frozen=True)
class TriggerPolicy:
    cooldown_s: float = DEFAULT_COOLDOWN_S
    """Alerts within this many seconds of a run's end are noted, not acted on."""
    reasons: tuple[str, ...] = RETRAINABLE
    automatic: bool = True
    """Alerts start runs; off, the trigger logs the run an alert would have started (manual requests still run)."""
    settle_for_labels: bool = True
    """A run an alert starts waits, before its pipeline, until the labels of the traffic the alert is about can
    have come back: the component's label delay (``StreamingSpec.feedback.max_delay_s``) after the alert's
    condition began (its ``startsAt``), plus ``settle_margin_s``. Training leaves out examples younger than the
    label delay, so a run cut at once would learn nothing of the changed world: on fraud (labels within 240 s), a
    model retrained on one to three minutes of the new world's labelled examples beats the champion by 0.06-0.3 ROC
    AUC, and one cut before them does not. With the shipped sustain times (15 and 30 minutes) the wait is
    usually over before the alert fires."""
    settle_margin_s: float = 60.0
    """Labelled examples of the changed world the run waits for, beyond the label delay (seconds of traffic)."""


class Trigger:
    """The decisions, the runs (one thread per component's run) and their log and metrics."""

    def __init__(
        self,
        launcher: Launcher,
        log_path: Path,
        policy: TriggerPolicy | None = None,
        clock: Callable[[], float] = time.time,
        progress: Progress = print,
        label_delay: Callable[[str], float] | None = None,
    ) -> None:
        """``label_delay``: a component's label delay in seconds (default: its contract's feedback, 0 without)."""
        self.launcher, self.policy, self.clock, self.progress = launcher, policy or TriggerPolicy(), clock, progress
        self.label_delay = label_delay or component_label_delay
        self.sleep: Callable[[float], None] = time.sleep
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.running: dict[str, threading.Thread] = {}
        self.ended_at: dict[str, float] = {}
        self.seen: set[tuple[str, str]] = set()
        self.registry = CollectorRegistry()
        self.decided = Counter(*_described(m.RETRAIN_DECISIONS), registry=self.registry)
        self.busy = Gauge(*_described(m.RETRAIN_RUNNING), registry=self.registry)
        self.runs = Counter(*_described(m.RETRAIN_RUNS), registry=self.registry)
        self._restore()

    def _restore(self) -> None:
        """A restarted trigger keeps its cooldowns and what it already acted on: both are in the decision log.
        A run the restart interrupted counts as ended then."""
        for decision in self.decisions():
            if decision.action == "started" and decision.alert.get("fingerprint"):
                self.seen.add((decision.alert["fingerprint"], decision.alert.get("startsAt", "")))
            if decision.action in ("started", "finished"):
                self.ended_at[decision.component] = _parse_iso(decision.at)

    # -- decisions ------------------------------------------------------------------------------------------------
    def on_alerts(self, payload: Any) -> list[Decision]:
        """Decide on each alert of an Alertmanager webhook payload (``BadPayload`` when it is not one)."""
        return [self._on_alert(record) for record in alerts_of(payload)]

    def _on_alert(self, record: dict[str, Any]) -> Decision:
        labels = {str(k): str(v) for k, v in record["labels"].items()}
        component = labels.get(m.COMPONENT, "")
        name, reason = labels.get("alertname", "?"), labels.get("reason", "")
        summary = str((record.get("annotations") or {}).get("summary") or name)
        key = (str(record.get("fingerprint", "")), str(record.get("startsAt", "")))
        alert = {**labels, "fingerprint": key[0], "startsAt": key[1], "summary": summary}
        with self.lock:
            if not component:
                return self._note("", "alert", f"{name} names no component", alert)
            if record.get("status") == "resolved":
                return self._note(component, "alert", f"{name} resolved", alert)
            if reason not in self.policy.reasons:
                wanted = ", ".join(self.policy.reasons)
                detail = f"{name} is a {reason or 'reasonless'} alert (only {wanted} retrain)"
                return self._note(component, "alert", detail, alert)
            if key[0] and key in self.seen:
                return self._note(component, "alert", f"{name} already acted on (duplicate notification)", alert)
            held = self._held(component, manual=False)
            if held:
                return self._note(component, "alert", held, alert)
            if not self.policy.automatic:
                return self._note(component, "alert", f"{name} would start a run: automatic retraining is off", alert)
            if key[0]:
                self.seen.add(key)
            cause = Cause("alert", f"{name}: {summary}", _now_iso(self.clock()), alert)
            return self._start(component, cause)

    def on_request(self, component: str, reason: str, source: Literal["manual", "schedule"] = "manual") -> Decision:
        """A person's (or the schedule's) request: no cooldown, but never a second run at once."""
        if not component:
            raise ValueError("a retraining request names its component")
        if not reason.strip():
            raise ValueError("a retraining request says why (--reason): it is recorded on the run and version")
        with self.lock:
            held = self._held(component, manual=True)
            if held:
                return self._note(component, source, held, {})
            return self._start(component, Cause(source, reason.strip(), _now_iso(self.clock())))

    def _held(self, component: str, manual: bool) -> str:
        if component in self.running:
            return f"a run for {component} is under way (one at a time)"
        ended = self.ended_at.get(component)
        if not manual and ended is not None and self.clock() - ended < self.policy.cooldown_s:
            left = self.policy.cooldown_s - (self.clock() - ended)
            return f"cooldown: {component}'s last run ended {self.clock() - ended:.0f}s ago ({left:.0f}s left)"
        return ""

    def _note(self, component: str, source: str, detail: str, alert: dict[str, str]) -> Decision:
        return self._record(Decision(_now_iso(self.clock()), component, "skipped", source, detail, alert))

    def _start(self, component: str, cause: Cause) -> Decision:
        decision = self._record(Decision(cause.at, component, "started", cause.source, cause.summary, cause.alert))
        thread = threading.Thread(target=self._run, args=(component, cause), name=f"retrain-{component}", daemon=True)
        self.running[component] = thread
        self.busy.labels(component).set(1)
        thread.start()
        return decision

    def _run(self, component: str, cause: Cause) -> None:
        def progress(line: str) -> None:
            self.progress(f"[retrain {component}] {line}")

        try:
            wait = self.settle_s(component, cause)
            if wait > 0:
                progress(
                    f"waiting {wait:.0f}s before training: the labels of the traffic since the alert began come "
                    f"up to {self.label_delay(component):.0f}s after it (TriggerPolicy.settle_for_labels)"
                )
                self.sleep(wait)
            result = self.launcher.retrain(component, cause, progress)
        except Exception as error:  # a failed run is an outcome to log, not a dead trigger
            result = RunResult("", "", f"failed: {type(error).__name__}: {error}"[:2000])
        with self.lock:
            self.runs.labels(component, result.outcome.split(":")[0]).inc()
            at = _now_iso(self.clock())
            ended = Decision(at, component, "finished", cause.source, result.outcome, cause.alert, result.run_id,
                             result.version)  # fmt: skip
            self._record(ended)
            self.ended_at[component] = self.clock()
            self.running.pop(component, None)
            self.busy.labels(component).set(0)

    def _record(self, decision: Decision) -> Decision:
        if decision.action != "finished":
            self.decided.labels(decision.component, decision.action, decision.cause).inc()
        with self.log_path.open("a") as log:
            log.write(json.dumps(asdict(decision), sort_keys=True) + "\n")
        self.progress(f"{decision.action} {decision.component or '-'} ({decision.cause}): {decision.detail}")
        return decision

    def settle_s(self, component: str, cause: Cause) -> float:
        """Seconds a run started by ``cause`` waits before its pipeline (``TriggerPolicy.settle_for_labels``)."""
        began = alert_time(cause.alert.get("startsAt", ""))
        if cause.source != "alert" or not self.policy.settle_for_labels or began is None:
            return 0.0
        ready_at = began + self.label_delay(component) + self.policy.settle_margin_s
        return max(0.0, ready_at - self.clock())

    # -- reading --------------------------------------------------------------------------------------------------
    def decisions(self, component: str = "") -> list[Decision]:
        try:
            lines = self.log_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = [Decision(**json.loads(line)) for line in lines if line.strip()]
        return [d for d in found if not component or d.component == component]

    def wait_idle(self, timeout_s: float) -> bool:
        """Until no run is under way (tests, and a clean shutdown); False on time-out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                threads = list(self.running.values())
            if not threads:
                return True
            threads[0].join(max(0.0, min(1.0, deadline - time.monotonic())))
        return False

    def metrics(self) -> bytes:
        return generate_latest(self.registry)


def _described(series: m.Series) -> tuple[str, str, tuple[str, ...]]:
    return series.name, series.help, series.labels


def history_start(history_s: float, at: float) -> str:
    """The training window's start for a run begun at ``at`` that learns from the last ``history_s`` seconds of
    the stream ("" when 0: everything archived). A run an alert started should learn the world the alert is about:
    years of the old one outvote the minutes of the new, and a stream's first hour (its windows still filling) is
    not what serving sees."""
    return _now_iso(at - history_s) if history_s > 0 else ""


def component_label_delay(component: str) -> float:
    """The component's declared label delay in seconds; 0 for one without feedback or not known here."""
    from contract.component import ContractError
    from contract.registry import load

    try:
        feedback = load(component).streaming.feedback
    except ContractError:
        return 0.0
    return float(feedback.max_delay_s) if feedback is not None else 0.0


def alert_time(text: str) -> float | None:
    """Alertmanager's RFC 3339 time (nanoseconds and ``Z`` included) in epoch seconds; None when absent or odd."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _parse_iso(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def handler(trigger: Trigger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: HTTPStatus, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise BadPayload(f"body over {MAX_BODY} bytes")
            return json.loads(self.rfile.read(length) or b"null")

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/-/healthy":
                self._answer(HTTPStatus.OK, {"status": "ok"})
            elif url.path == "/metrics":
                self._answer(HTTPStatus.OK, trigger.metrics(), "text/plain; version=0.0.4")
            elif url.path == "/decisions":
                component = parse_qs(url.query).get("component", [""])[-1]
                self._answer(HTTPStatus.OK, [asdict(d) for d in trigger.decisions(component)])
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no {url.path}: GET /decisions, /metrics or /-/healthy"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            try:
                if path == WEBHOOK_PATH:
                    decided = trigger.on_alerts(self._body())
                elif path == RETRAIN_PATH:
                    body = self._body()
                    if not isinstance(body, dict):
                        raise BadPayload('a retraining request is a JSON object: {"component": ..., "reason": ...}')
                    decided = [trigger.on_request(str(body.get("component", "")), str(body.get("reason", "")))]
                else:
                    self._answer(HTTPStatus.NOT_FOUND, {"error": f"POST {WEBHOOK_PATH} or {RETRAIN_PATH}"})
                    return
            except (ValueError, UnicodeDecodeError) as error:  # BadPayload and JSON errors are ValueErrors
                self._answer(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            self._answer(HTTPStatus.OK, [asdict(d) for d in decided])

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every decision is in the log; a line per probe or scrape would bury them

    return Handler


def serve(trigger: Trigger, host: str, port: int) -> ThreadingHTTPServer:
    """The trigger's HTTP server, bound and ready to ``serve_forever``."""
    return ThreadingHTTPServer((host, port), handler(trigger))


def summaries(decisions: Iterable[Decision]) -> list[str]:
    """One line per decision, for ``mlstack retrain decisions``."""
    lines = []
    for d in decisions:
        run = f" run {d.run_id}" if d.run_id else ""
        version = f" v{d.version}" if d.version else ""
        lines.append(f"{d.at}  {d.component or '-':<10} {d.action:<8} ({d.cause}){run}{version}: {d.detail}")
    return lines
