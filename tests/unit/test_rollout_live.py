"""The canary on live labels (issue 19 item 4): where the monitor reports both versions' live metric, a canary shown
worse beyond the tolerance is rolled back at any step, and all traffic moves to it only once the labels show the
evidence asked for; until then it keeps its share, and the status says why. Without a monitor, nothing changes."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from mlflow import MlflowClient
from rich.console import Console

from cli import kubectl_canary
from contract.live_evaluation import Estimate
from serving.rollout.analysis import AnalysisConfig, Snapshot
from serving.rollout.rollout import RolloutConfig, RolloutError
from tests.unit.test_rollout import _cluster, window


def live(snapshot: Snapshot, value: float, stderr: float = 0.005, count: int = 500) -> Snapshot:
    return replace(snapshot, live=Estimate(value, stderr, count))


def test_a_canary_worse_on_live_labels_is_rolled_back_at_its_first_step(registry: MlflowClient) -> None:
    rollout, _, prometheus = _cluster(registry, "1")
    rollout.start()
    prometheus.counters = {"1": live(window(1000), 0.95), "2": live(window(200), 0.88)}  # roc_auc, tolerance 0.02
    action, result = rollout.step()
    assert action == "rolled back", result.summary
    assert "live roc_auc 0.8800 vs 0.9500" in result.summary and result.summary.endswith(": worse")
    state = rollout.state()
    assert state is not None and state["history"][-1]["live_verdict"] == "worse"


def test_all_traffic_moves_only_on_live_evidence_and_the_status_shows_the_hold(registry: MlflowClient) -> None:
    rollout, api, prometheus = _cluster(registry, "1")
    rollout.start()
    shares = []
    for n in range(1, 4):  # 10% -> 25% -> 50%: labels still few
        prometheus.counters = {"1": live(window(1000 * n), 0.95, count=100), "2": live(window(200 * n), 0.95, count=40)}
        action, _ = rollout.step()
        shares.append(api.isvc["spec"]["predictor"]["canaryTrafficPercent"])
    assert shares == [25, 50, 50] and action == "waiting", "held at 50% until the labels show it"
    state = rollout.state()
    assert state is not None and state["holding"] == "for live evidence (not worse): waiting"

    console = Console(width=200, record=True)
    console.print(kubectl_canary.status_table(rollout))
    shown = console.export_text()
    assert "holding at 50% for live evidence (not worse): waiting" in shown
    assert "0.9500 ±0.005 (100)" in shown and "waiting for labels (stable 100, canary 40)" in shown

    prometheus.counters = {"1": live(window(5000), 0.95), "2": live(window(1200), 0.951)}  # 500 labels each now
    action, result = rollout.step()
    assert action == "stepped to 100%" and result.live is not None and result.live.verdict == "not worse"
    state = rollout.state()
    assert state is not None and "holding" not in state
    prometheus.counters = {"1": live(window(5000), 0.95), "2": live(window(2200), 0.951)}
    assert rollout.step()[0] == "promoted", "at 100% against stable's last live estimate"


def test_a_canary_asked_to_be_better_waits_while_it_is_only_as_good(registry: MlflowClient) -> None:
    rollout, api, prometheus = _cluster(registry, "1")
    rollout.config = RolloutConfig(
        schedule=(50, 100), analysis=AnalysisConfig(min_requests=50, live_evidence="better"), warmup_requests=0
    )
    rollout.start()
    prometheus.counters = {"1": live(window(1000), 0.95), "2": live(window(1000), 0.952)}
    assert rollout.step()[0] == "waiting"
    prometheus.counters = {"1": live(window(2000), 0.95), "2": live(window(2000), 0.99)}
    assert rollout.step()[0] == "stepped to 100%"
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 100


def test_without_a_monitor_the_rollout_steps_as_before(registry: MlflowClient) -> None:
    rollout, _, prometheus = _cluster(registry, "1")
    rollout.start()
    for n in range(1, 5):
        prometheus.counters = {"1": window(1000 * n), "2": window(200 * n)}
        action, _ = rollout.step()
    assert action == "promoted"


def test_a_monitored_component_holds_a_canary_whose_labels_have_not_come_back(registry: MlflowClient) -> None:
    """The monitor reports the stable version, not yet the canary: all traffic waits for the canary's own labels
    (the closed loop's drill promoted a retrained model at 100% before a single one of them had come back)."""
    rollout, api, prometheus = _cluster(registry, "1")
    rollout.start()
    for n in range(1, 4):
        prometheus.counters = {"1": live(window(1000 * n), 0.95), "2": window(200 * n)}
        action, _ = rollout.step()
    assert action == "waiting" and api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 50
    state = rollout.state()
    assert state is not None and state["holding"] == "for live evidence (not worse): no live metric of the canary yet"
    prometheus.counters = {"1": live(window(5000), 0.95), "2": live(window(1200), 0.951)}
    assert rollout.step()[0] == "stepped to 100%"


def test_a_monitored_canary_whose_scores_differ_is_judged_by_its_live_labels(registry: MlflowClient) -> None:
    """A model retrained on a changed world answers unlike the champion because it is right where the champion is
    wrong: with live labels asked for, shifted scores hold the canary until the labels judge it (the loop's first
    drill rolled back such a model, live ROC AUC 0.975 against 0.805). Without a monitor they still fail it."""
    rollout, api, prometheus = _cluster(registry, "1")
    rollout.start()
    shifted = window(200, mean_score=0.6)
    prometheus.counters = {"1": live(window(1000), 0.80, count=600), "2": live(shifted, 0.97, count=40)}
    action, result = rollout.step()
    assert action == "waiting" and result.verdict == "inconclusive", result.summary
    assert "prediction scores shifted" in result.summary and "held until the live labels judge it" in result.summary
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    prometheus.counters = {"1": live(window(2000), 0.80, count=600), "2": live(window(400, mean_score=0.6), 0.97)}
    action, result = rollout.step()
    assert action == "stepped to 25%" and result.live is not None and result.live.verdict == "better", result.summary

    worse, _, prometheus = _cluster(registry, "1")
    worse.start()
    prometheus.counters = {"1": live(window(1000), 0.95), "2": live(window(200, mean_score=0.6), 0.85)}
    assert worse.step()[0] == "rolled back", "shifted and shown worse on the labels"

    registry.set_registered_model_alias("fraud", "challenger", "2")  # the rollback above dropped it
    unmonitored, _, prometheus = _cluster(registry, "1")
    unmonitored.start()
    prometheus.counters = {"1": window(1000), "2": window(200, mean_score=0.6)}
    action, result = unmonitored.step()
    assert action == "rolled back" and "prediction scores shifted" in result.summary


def test_an_experiment_holds_its_split_then_reports_the_effect_and_leaves_the_choice(registry: MlflowClient) -> None:
    rollout, api, prometheus = _cluster(registry, "1")
    rollout.start(share=50, experiment_s=0.5)
    prometheus.counters = {"1": live(window(1000), 0.95), "2": live(window(1000), 0.97)}
    action, _ = rollout.step()
    assert action == "holding" and api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 50
    time.sleep(0.6)
    action, _ = rollout.step()
    state = rollout.state()
    assert action == "experiment ended" and state is not None and state["outcome"] == "experiment ended"
    result = state["experiment"]["result"]
    assert result["verdict"] == "better" and result["gain"] == pytest.approx(0.02) and result["low"] > 0
    assert api.isvc["spec"]["predictor"].get("canaryTrafficPercent") in (0, None), "traffic back to stable"
    aliases = [str(registry.get_model_version_by_alias("fraud", alias).version) for alias in ("challenger", "champion")]
    assert aliases == ["2", "1"], "promoting is the operator's"


def test_an_experiment_is_still_guarded_and_needs_a_horizon(registry: MlflowClient) -> None:
    rollout, _, prometheus = _cluster(registry, "1")
    with pytest.raises(RolloutError, match="positive number of seconds, not 0"):
        rollout.start(share=50, experiment_s=0)
    rollout.start(share=50, experiment_s=3600)
    prometheus.counters = {"1": window(1000), "2": window(1000, errors=100)}
    assert rollout.step()[0] == "rolled back", "a failing guardrail ends an experiment at once"
