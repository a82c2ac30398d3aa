"""The closed loop in embedded mode, as a drill: the times it runs on, and what a person watching it sees.

The loop itself is the platform's, unchanged: the monitor's alert reaches Alertmanager, which notifies the
retraining trigger (the supervised ``retrain`` service), which waits for the labels of the changed world, runs the
training pipeline and canaries what the gate registers, judged on live labels. A drill only shortens the times the
shipped settings give each step (sustain times of minutes instead of a quarter or half an hour, a canary of two
steps, a few trials) so the whole loop fits in one sitting; ``LoopWatch`` reads each step's own record (the alert
receiver's log, the trigger's decision log, the registry, the rollout's state) and says what happened when.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from local.alerting import alerts_log
from local.model_serving import EmbeddedServing
from local.settings import AlertingSettings, EmbeddedSettings, RetrainSettings
from monitoring.alert_routing import Routing
from monitoring.alert_rules import REASON, Timing
from monitoring.retrain_trigger import RETRAINABLE, alert_time

DRILL_ALERTING = AlertingSettings(
    scrape_interval="5s",
    evaluation_interval="5s",
    # Freshness and serving keep their shipped sustain times: a busy two-core machine training a model is not the
    # world changing, and the drill's control run must raise nothing.
    rules=Timing(drift_for="1m", performance_for="1m", quality_for="1m"),
    routing=Routing(group_wait="5s", group_interval="30s", repeat_interval="1h"),
)
DRILL_RETRAINING = RetrainSettings(
    trials=4,
    window_s=20.0,
    # The live events are the canary's only traffic (a few requests a second): two steps, judged on live labels.
    schedule=(50, 100),
    min_requests=100,
    live_evidence="better",
    live_min_labels=200,
    # A run waits until six minutes of the changed world are labelled and learns from the last twelve: split by
    # time, its training part must hold the new world, not only its holdout (fraud's labels take up to 4 minutes).
    settle_margin_s=360.0,
    history_s=720.0,
)
DRILL_EXPORTER_WINDOW = (300.0, 10.0)
"""The monitor's window and slide in the drill: five minutes of predictions (about 1,000 labelled per version at
50%, enough to tell 0.95 from 0.88 ROC AUC), a new window every ten seconds."""


def drill_settings(settings: EmbeddedSettings) -> EmbeddedSettings:
    """``settings`` with the drill's times, alerts starting runs."""
    return replace(settings, alerting=DRILL_ALERTING, retraining=DRILL_RETRAINING, retrain_on_alerts=True)


def _epoch(text: str) -> float:
    return alert_time(text) or 0.0


def _get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class LoopEvent:
    """One transition of the loop, when it happened (epoch seconds) and what it was."""

    at: float
    kind: str
    """``change``, ``alert``, ``retraining``, ``training``, ``registered``, ``canary``, ``promoted``, ``rolled back``,
    ``not registered`` or ``failed``."""
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


class Transitions(Protocol):
    """What the loop's figures read: its events, and the first of a kind (``LoopWatch`` is one)."""

    events: list[LoopEvent]

    def first(self, kind: str) -> LoopEvent | None: ...


ORDER = ("change", "alert", "retraining", "registered", "canary", "promoted")
"""The transitions of a loop that closes, in the order they must happen."""


class LoopWatch:
    """Reads the loop's records for one component and turns what is new into ``LoopEvent``s."""

    def __init__(self, settings: EmbeddedSettings, serving: EmbeddedServing, champion: str, since: float) -> None:
        self.settings = settings
        self.serving = serving
        self.component = serving.component.name
        self.champion = champion
        self.since = since
        self.events: list[LoopEvent] = []
        self._seen: set[tuple[str, str]] = set()

    def _add(self, key: tuple[str, str], event: LoopEvent, emit: Callable[[LoopEvent], None]) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self.events.append(event)
            emit(event)

    def poll(self, emit: Callable[[LoopEvent], None]) -> list[LoopEvent]:
        """Everything that happened since the last poll, oldest first (also passed to ``emit`` one by one)."""
        before = len(self.events)
        self._alerts(emit)
        self._decisions(emit)
        self._rollout(emit)
        return self.events[before:]

    def first(self, kind: str) -> LoopEvent | None:
        return next((e for e in self.events if e.kind == kind), None)

    def alerts(self) -> list[dict[str, Any]]:
        """Every firing alert of the component the receiver recorded since the watch began."""
        path = alerts_log(self.settings)
        if not path.exists():
            return []
        found = []
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            labels = record.get("labels", {})
            if (
                labels.get("component") == self.component
                and record.get("status") == "firing"
                and _epoch(record.get("startsAt", "")) >= self.since - 1
            ):
                found.append(record)
        return found

    def _alerts(self, emit: Callable[[LoopEvent], None]) -> None:
        for record in self.alerts():
            labels = record["labels"]
            retrainable = labels.get(REASON) in RETRAINABLE
            summary = (record.get("annotations") or {}).get("summary", labels.get("alertname", "?"))
            text = f"alert {labels.get('alertname')} ({labels.get(REASON)}): {summary}" + (
                "" if retrainable else " (noted: not one a new model fixes)"
            )
            key = ("alert", f"{record.get('fingerprint')}-{record.get('startsAt')}")
            # When it reached the receiver (and the trigger beside it), not when its condition began to hold.
            at = _epoch(record.get("received_at", "")) or _epoch(record["startsAt"])
            self._add(key, LoopEvent(at, "alert", text, dict(labels)), emit)

    def _decisions(self, emit: Callable[[LoopEvent], None]) -> None:
        found = _get_json(f"{self.settings.retrain_url}/decisions?component={self.component}") or []
        for decision in found:
            at = _epoch(decision["at"])
            if at < self.since - 1 or decision["action"] == "skipped":
                continue
            if decision["action"] == "started":
                event = LoopEvent(at, "retraining", f"retraining started ({decision['cause']}): {decision['detail']}")
            elif decision["version"]:
                event = LoopEvent(at, "finished", f"run ended: v{decision['version']} {decision['detail']}")
            else:
                event = LoopEvent(at, "finished", f"run ended: {decision['detail']}")
            self._add(("decision", f"{decision['action']}-{decision['at']}"), event, emit)

    def _rollout(self, emit: Callable[[LoopEvent], None]) -> None:
        path = self.serving.state_path
        state = json.loads(path.read_text()) if path.exists() else None
        if not state or float(state.get("started_at", 0)) < self.since or state.get("canary_version") == self.champion:
            return
        version = str(state["canary_version"])
        started = float(state["started_at"])
        self._add(
            ("registered", version),
            LoopEvent(started, "registered", f"challenger v{version} registered; its canary starts", {"v": version}),
            emit,
        )
        for entry in state.get("history", []):
            if entry["verdict"] == "inconclusive":
                continue
            reasons = "; ".join(entry.get("reasons", []))[:300]
            text = f"canary at {entry['share']}%: {entry['verdict']}: {reasons}"
            self._add(("canary", str(entry["at"])), LoopEvent(entry["at"], "canary", text, dict(entry)), emit)
        if state.get("holding") and not state.get("outcome"):
            self._add(
                ("holding", str(state.get("share"))),
                LoopEvent(time.time(), "holding", f"canary held at {state['share']}%: {state['holding']}"),
                emit,
            )
        outcome = state.get("outcome")
        if outcome:
            text = f"canary {outcome}: v{version} " + (f"({state.get('reason')})" if state.get("reason") else "")
            ended = float(state.get("ended_at", time.time()))
            self._add(("outcome", version), LoopEvent(ended, str(outcome), text.strip(), {"v": version}), emit)


def transitions_in_order(events: list[LoopEvent]) -> list[str]:
    """The kinds of ``ORDER`` in the order they first happened (what a closed loop must show as ``ORDER`` itself)."""
    firsts: dict[str, float] = {}
    for event in events:
        if event.kind in ORDER and event.kind not in firsts:
            if event.kind == "alert" and event.detail.get(REASON) not in RETRAINABLE:
                continue
            firsts[event.kind] = event.at
    return sorted(firsts, key=lambda kind: (firsts[kind], ORDER.index(kind)))
