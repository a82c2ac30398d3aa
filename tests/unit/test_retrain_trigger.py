"""The retraining trigger's decisions (monitoring.retrain_trigger): which alerts start a run, which are only noted
and why, one run per component, the cooldown, a manual request, a failed run, a restart, and its HTTP face. The
runs are a launcher of the test's that waits to be released (the pipeline and canary run in the local tier)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import metrics as m
from monitoring.retrain_trigger import Cause, Progress, RunResult, Trigger, TriggerPolicy, serve


class HeldLauncher:
    """Records each run's cause; a run ends when the test releases it, as the outcome it is given."""

    def __init__(self) -> None:
        self.causes: list[tuple[str, Cause]] = []
        self.release = threading.Event()
        self.outcome: RunResult | Exception = RunResult("run-1", "7", "promoted")

    def retrain(self, component: str, cause: Cause, progress: Progress) -> RunResult:
        self.causes.append((component, cause))
        assert self.release.wait(10), "the test never released the run"
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def alert(
    name: str = "FeatureDrift",
    reason: str = "drift",
    component: str = "fraud",
    status: str = "firing",
    fingerprint: str = "f1",
    starts: str = "2027-01-15T08:00:00Z",
) -> dict[str, Any]:
    labels = {"alertname": name, "reason": reason, "severity": "warning", "version": "3"}
    if component:
        labels["component"] = component
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{name} on {component}: PSI 0.41"},
        "startsAt": starts,
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "receiver": "mlstack", "status": "firing", "alerts": list(alerts)}


@pytest.fixture()
def launcher() -> Iterator[HeldLauncher]:
    held = HeldLauncher()
    yield held
    held.release.set()


def make(tmp_path: Path, launcher: HeldLauncher, clock: Clock, **policy: Any) -> Trigger:
    """A trigger on ``clock``; runs start at once unless the test asks for the wait for labels."""
    policy = {"cooldown_s": 600, "settle_for_labels": False, **policy}
    return Trigger(launcher, tmp_path / "decisions.jsonl", TriggerPolicy(**policy), clock, lambda _: None)


def test_a_drift_alert_starts_one_run_and_its_repeats_and_others_wait(tmp_path: Path, launcher: HeldLauncher) -> None:
    clock = Clock()
    trigger = make(tmp_path, launcher, clock)
    (started,) = trigger.on_alerts(payload(alert()))
    assert (started.action, started.component, started.cause) == ("started", "fraud", "alert")
    assert started.detail == "FeatureDrift: FeatureDrift on fraud: PSI 0.41"
    repeat, other, elsewhere = trigger.on_alerts(
        payload(
            alert(),
            alert("LiveMetricBelowHoldout", "performance", fingerprint="f2"),
            alert(component="demand", fingerprint="f3"),
        )
    )
    assert repeat.action == "skipped" and "duplicate" in repeat.detail
    assert other.action == "skipped" and "under way" in other.detail, "one run per component at a time"
    assert elsewhere.action == "started", "another component's run is its own"
    launcher.release.set()
    assert trigger.wait_idle(10)
    finished = [d for d in trigger.decisions() if d.action == "finished"]
    assert {(d.component, d.detail, d.version, d.run_id) for d in finished} == {
        ("fraud", "promoted", "7", "run-1"),
        ("demand", "promoted", "7", "run-1"),
    }
    component, cause = launcher.causes[0]
    assert component == "fraud" and cause.alert["alertname"] == "FeatureDrift" and cause.alert["version"] == "3"
    assert json.loads(cause.to_json())["source"] == "alert", "the cause goes to the pipeline as JSON"


def test_the_cooldown_holds_alerts_back_but_not_a_person(tmp_path: Path, launcher: HeldLauncher) -> None:
    clock = Clock()
    trigger = make(tmp_path, launcher, clock)
    launcher.release.set()
    trigger.on_alerts(payload(alert()))
    assert trigger.wait_idle(10)
    clock.now += 300
    (held,) = trigger.on_alerts(payload(alert(fingerprint="f9")))
    assert held.action == "skipped" and held.detail.startswith("cooldown") and "300s left" in held.detail
    manual = trigger.on_request("fraud", "new merchants onboarded")
    assert (manual.action, manual.cause, manual.detail) == ("started", "manual", "new merchants onboarded")
    assert trigger.wait_idle(10)
    clock.now += 601
    (after,) = trigger.on_alerts(payload(alert(fingerprint="f10")))
    assert after.action == "started", "the cooldown counts from the last run's end"


@pytest.mark.parametrize(
    ("the_alert", "why"),
    [
        (alert("FeatureFreshnessSlow", "freshness"), "freshness alert (only drift, performance, quality retrain)"),
        (alert("ServingErrors", "serving"), "serving alert"),
        (alert(status="resolved"), "FeatureDrift resolved"),
        (alert(component=""), "names no component"),
    ],
)
def test_alerts_a_new_model_cannot_fix_are_noted_not_acted_on(
    tmp_path: Path, launcher: HeldLauncher, the_alert: dict[str, Any], why: str
) -> None:
    (decision,) = make(tmp_path, launcher, Clock()).on_alerts(payload(the_alert))
    assert decision.action == "skipped" and why in decision.detail
    assert not launcher.causes


def test_with_automatic_retraining_off_an_alert_is_logged_as_what_it_would_have_done(
    tmp_path: Path, launcher: HeldLauncher
) -> None:
    trigger = make(tmp_path, launcher, Clock(), automatic=False)
    (decision,) = trigger.on_alerts(payload(alert()))
    assert decision.action == "skipped" and "would start a run: automatic retraining is off" in decision.detail
    assert trigger.on_request("fraud", "by hand").action == "started", "a person's request still runs"


def test_a_failed_run_is_an_outcome_and_the_trigger_lives_on(tmp_path: Path, launcher: HeldLauncher) -> None:
    trigger = make(tmp_path, launcher, Clock())
    launcher.outcome = RuntimeError("MLflow unreachable")
    launcher.release.set()
    trigger.on_request("fraud", "by hand")
    assert trigger.wait_idle(10)
    finished = trigger.decisions()[-1]
    assert (finished.action, finished.detail) == ("finished", "failed: RuntimeError: MLflow unreachable")
    assert trigger.on_request("fraud", "again").action == "started"


def test_a_restarted_trigger_keeps_its_cooldown_and_what_it_acted_on(tmp_path: Path, launcher: HeldLauncher) -> None:
    clock = Clock()
    launcher.release.set()
    first = make(tmp_path, launcher, clock)
    first.on_alerts(payload(alert()))
    assert first.wait_idle(10)
    clock.now += 900  # past the cooldown
    again = make(tmp_path, launcher, clock)
    (repeat,) = again.on_alerts(payload(alert()))
    assert repeat.action == "skipped" and "duplicate" in repeat.detail, "the same alert, notified after a restart"
    assert again.on_alerts(payload(alert(fingerprint="new")))[0].action == "started"


def test_a_request_must_say_why(tmp_path: Path, launcher: HeldLauncher) -> None:
    with pytest.raises(ValueError, match="says why"):
        make(tmp_path, launcher, Clock()).on_request("fraud", "  ")


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_over_http_webhook_request_decisions_and_metrics(tmp_path: Path, launcher: HeldLauncher) -> None:
    trigger = make(tmp_path, launcher, Clock())
    server = serve(trigger, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = _post(f"{base}/alerts", {"alerts": "no"})
        assert status == 400 and '"alerts" list' in body["error"]
        status, body = _post(f"{base}/retrain", {"component": "fraud"})
        assert status == 400 and "says why" in body["error"]
        status, body = _post(f"{base}/alerts", payload(alert(), alert()))
        assert status == 200 and [d["action"] for d in body] == ["started", "skipped"]
        launcher.release.set()
        assert trigger.wait_idle(10)
        with urllib.request.urlopen(f"{base}/decisions?component=fraud", timeout=5) as response:
            assert [d["action"] for d in json.loads(response.read())] == ["started", "skipped", "finished"]
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        decided = m.RETRAIN_DECISIONS.selector
        assert samples[(decided, (("action", "started"), ("cause", "alert"), ("component", "fraud")))] == 1
        assert samples[(decided, (("action", "skipped"), ("cause", "alert"), ("component", "fraud")))] == 1
        assert samples[(m.RETRAIN_RUNS.selector, (("component", "fraud"), ("outcome", "promoted")))] == 1
        assert samples[(m.RETRAIN_RUNNING.selector, (("component", "fraud"),))] == 0
    finally:
        server.shutdown()


def test_a_run_an_alert_starts_waits_for_the_labels_of_the_traffic_since_the_alert_began(
    tmp_path: Path, launcher: HeldLauncher
) -> None:
    """Fraud's labels come up to 240 s after a prediction: an alert whose condition began 100 s ago waits the rest of
    those 240 s and the margin before its pipeline; a person's request and a late alert do not wait."""
    clock = Clock()
    trigger = make(tmp_path, launcher, clock, settle_for_labels=True, settle_margin_s=60)
    waits: list[float] = []
    trigger.sleep = waits.append
    began = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(clock.now - 100)) + ".123456789Z"
    (started,) = trigger.on_alerts(payload(alert(starts=began)))
    assert started.action == "started"
    launcher.release.set()
    assert trigger.wait_idle(10)
    assert waits == [pytest.approx(240 + 60 - 100, abs=1)]
    assert trigger.settle_s("fraud", Cause("manual", "why", "", {})) == 0.0
    late = Cause("alert", "old", "", {"startsAt": "2020-01-01T00:00:00Z"})
    assert trigger.settle_s("fraud", late) == 0.0
    assert trigger.settle_s("fraud", Cause("alert", "odd time", "", {"startsAt": "yesterday"})) == 0.0
    unknown = Cause("alert", "x", "", {"startsAt": began})
    assert trigger.settle_s("no-such-component", unknown) == 0.0, "no label delay: the margin (60 s) has passed"
