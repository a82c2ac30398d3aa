"""A failing stable version (issue 21): the analysis says so rather than compare the canary with it, the rollout
pauses without moving traffic, error rates stay within 100% when counters are read at different moments, and the
demo and the kubectl plugin report it (the demo with a non-zero exit)."""

from __future__ import annotations

from typing import Any

import pytest
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from cli import demo_cli
from cli import kubectl_canary as kubectl_plugin
from cli.demo_state import DemoResult
from serving.rollout.analysis import STABLE_UNHEALTHY, AnalysisConfig, Snapshot, analyse
from serving.rollout.rollout import PAUSED, Rollout
from tests.unit.kserve_fake import FakeKServe
from tests.unit.test_rollout import CannedPrometheus, _cluster, window

CONFIG = AnalysisConfig(min_requests=50)


@pytest.fixture()
def cluster(registry: MlflowClient) -> tuple[Rollout, FakeKServe, CannedPrometheus]:
    return _cluster(registry, "1")


def test_a_failing_stable_is_the_verdict_not_a_comparison() -> None:
    result = analyse(window(1000, errors=1000), window(200, errors=200), CONFIG)
    assert result.verdict == STABLE_UNHEALTHY
    assert "stable error rate 100.0% over 1000 requests" in result.summary
    assert "canary error rate 100.0% over 200 requests" in result.summary
    # A canary as broken as its baseline passes every relative check; it must not pass here.
    assert analyse(window(1000, errors=30), window(200, errors=6), CONFIG).verdict == STABLE_UNHEALTHY


def test_a_stable_is_judged_on_its_own_sample_size() -> None:
    few = analyse(window(20, errors=20), window(5, errors=5), CONFIG)
    assert few.verdict == "inconclusive", "20 requests are too few to call the stable version broken"
    lone = analyse(window(1000, errors=900), window(5), CONFIG)
    assert lone.verdict == STABLE_UNHEALTHY, "a canary still short of traffic does not hide a broken stable"
    healthy = analyse(window(1000, errors=10), window(200), CONFIG)
    assert healthy.verdict == "pass", healthy.summary


def test_rates_stay_within_100_percent_when_errors_are_read_after_arrivals() -> None:
    # Every request fails; the server counts a request on arrival and its error when it fails. At the baseline
    # 40 requests were in flight (counted, not yet failed); at the end none were.
    baseline = Snapshot(requests=1040, server_errors=1000)
    end = Snapshot(requests=3000, server_errors=3000)
    windowed = end.minus(baseline)
    assert windowed.requests == 1960
    assert windowed.error_rate == 1.0, "the in-flight requests' failures are not counted against this window twice"
    partial = Snapshot(requests=3000, server_errors=1500).minus(baseline)
    assert partial.server_errors == 500, "below the bound the errors are the counters' difference"


def test_a_failing_stable_pauses_the_rollout_without_moving_traffic(cluster: Any, registry: MlflowClient) -> None:
    rollout, api, prometheus = cluster
    rollout.start()
    prometheus.counters = {"1": window(1000, errors=1000), "2": window(200)}  # a healthy canary, too
    action, result = rollout.step()
    assert action == PAUSED and result.verdict == STABLE_UNHEALTHY
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10, "neither stepped nor rolled back"
    assert str(registry.get_model_version_by_alias("fraud", "champion").version) == "1", "not promoted"
    assert str(registry.get_model_version_by_alias("fraud", "challenger").version) == "2", "the canary is not blamed"
    state = rollout.state()
    assert state and not state["outcome"] and "stable error rate 100.0%" in state["paused"]
    # The window restarted: once the stable version is repaired, the next verdict is on fresh traffic.
    prometheus.counters = {"1": window(2000, errors=1000), "2": window(400)}
    action, result = rollout.step()
    assert action == "stepped to 25%" and result.verdict == "pass", result.summary
    assert "paused" not in (rollout.state() or {})


def test_kubectl_plugin_shows_and_exits_on_a_paused_rollout(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rollout, _, prometheus = cluster
    monkeypatch.setattr(kubectl_plugin, "rollout_for", lambda component, config=None: rollout)
    monkeypatch.setattr(kubectl_plugin, "console", Console(width=400))  # the table's cells unwrapped
    rollout.start()
    prometheus.counters = {"1": window(1000, errors=1000), "2": window(200)}
    runner = CliRunner()
    ran = runner.invoke(kubectl_plugin.app, ["run", "fraud", "--window", "0"])
    assert ran.exit_code == 1 and "paused at 10%" in ran.output and "stable error rate 100.0%" in ran.output
    prometheus.counters = {"1": window(2000, errors=2000), "2": window(400)}
    shown = runner.invoke(kubectl_plugin.app, ["status", "fraud"])
    assert shown.exit_code == 0 and "stable unhealthy" in shown.output and "paused" in shown.output


def _result(**fields: Any) -> DemoResult:
    return DemoResult(component="fraud", seed=1, champion_version="1", challenger_version="2", **fields)


def test_the_demo_fails_on_an_unhealthy_stable_or_when_no_prediction_succeeded() -> None:
    healthy = _result(canary={"outcome": "rolled back", "history": []}, canary_responses={"sent": 900, "ok": 880})
    assert healthy.failure == ""
    paused = _result(canary={"outcome": None, "paused": "stable error rate 100.0% over 900 requests"})
    assert paused.failure.startswith("the stable version v1 was unhealthy") and paused.verdict == PAUSED
    broken = _result(canary={"outcome": "rolled back", "history": []}, canary_responses={"sent": 900, "ok": 0})
    assert "every prediction failed during the canary (900 requests" in broken.failure
    assert _result().failure == "", "no canary ran: nothing to judge"


def test_mlstack_demo_exits_non_zero_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = _result(canary={"outcome": "rolled back", "history": []}, canary_responses={"sent": 900, "ok": 0})
    monkeypatch.setattr(demo_cli, "run_demo", lambda options, progress, phases=None: broken)
    monkeypatch.setattr(demo_cli, "print_summary", lambda result, services=None: None)
    monkeypatch.setattr(demo_cli, "EmbeddedServices", lambda settings: None)
    app = demo_cli.typer.Typer()
    app.command()(demo_cli.demo)
    ran = CliRunner().invoke(app, [])
    assert ran.exit_code == 1 and "demo failed: every prediction failed" in ran.output
