"""Rollout decisions and the kubectl plugin's InferenceService patches, against a fake Kubernetes API that plays
KServe and Knative (``tests.unit.kserve_fake``: revisions ready at once here), canned Prometheus counters and a real
(in-process, SQLite) MLflow registry."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest
from mlflow import MlflowClient
from rich.console import Console
from typer.testing import CliRunner

from cli import kubectl_canary as kubectl_plugin
from contract.registry import load
from serving.inference_service import inference_service
from serving.rollout.analysis import AnalysisConfig, Snapshot, analyse, psi
from serving.rollout.backend import CanaryNotReady
from serving.rollout.cluster_backend import CANARY, STABLE, ClusterBackend, PrometheusReader
from serving.rollout.rollout import Rollout, RolloutConfig, RolloutError
from tests.unit.kserve_fake import FakeKServe

LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf]
PROBABILITY = [round(0.05 * i, 2) for i in range(1, 21)]


def window(requests: int, errors: int = 0, latency_s: float = 0.01, mean_score: float = 0.1) -> Snapshot:
    """Cumulative histograms for ``requests`` requests at one latency and scores around one value."""
    latency = {le: float(requests if latency_s <= le else 0) for le in LATENCY}
    predictions = {}
    for le in PROBABILITY:
        share = min(max((le - (mean_score - 0.1)) / 0.2, 0.0), 1.0)  # uniform on mean +- 0.1
        predictions[le] = requests * share
    return Snapshot(requests, errors, latency, predictions)


class CannedPrometheus(PrometheusReader):
    def __init__(self) -> None:
        super().__init__("http://prometheus.invalid")
        self.counters: dict[str, Snapshot] = {}

    def snapshot(self, component: str, version: str) -> Snapshot:
        return self.counters.get(version, Snapshot())


def _cluster(registry: MlflowClient, deployed_version: str) -> tuple[Rollout, FakeKServe, CannedPrometheus]:
    isvc = inference_service(
        load("fraud"),
        "mlstack",
        "registry.local/serving:abc",
        deployed_version,
        "http://mlflow",
        "/feast/fraud",
        {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    )
    api, prometheus = FakeKServe(isvc), CannedPrometheus()

    def champion() -> str:
        return str(registry.get_model_version_by_alias("fraud", "champion").version)

    backend = ClusterBackend(api, api.core, "mlstack", "fraud", prometheus, champion)
    config = RolloutConfig(analysis=AnalysisConfig(min_requests=50), warmup_requests=0)
    return Rollout(backend, registry, config), api, prometheus


@pytest.fixture()
def cluster(registry: MlflowClient) -> tuple[Rollout, FakeKServe, CannedPrometheus]:
    return _cluster(registry, "1")


def _version_arg(isvc: dict[str, Any]) -> str:
    args = isvc["spec"]["predictor"]["containers"][0]["args"]
    return str(args[args.index("--model-version") + 1])


def test_start_patches_a_canary_revision_at_the_first_share(cluster: Any) -> None:
    rollout, api, _ = cluster
    rollout.start()
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert _version_arg(api.isvc) == "2"
    assert api.core.data()[STABLE] == "1" and api.core.data()[CANARY] == "2"
    with pytest.raises(RolloutError, match="already at 10%"):
        rollout.start()
    # KServe copies InferenceService annotations onto the Knative revision: bookkeeping there would start a new
    # revision at every step, so the rollout patches only the served version and the split.
    assert all(set(patch) == {"spec"} for patch in api.patches), api.patches


def test_a_service_deployed_on_the_alias_canaries_against_the_champion(registry: MlflowClient) -> None:
    rollout, api, prometheus = _cluster(registry, "")
    assert rollout.backend.stable_version() == "1"
    state = rollout.start()
    assert state["stable_version"] == "1" and _version_arg(api.isvc) == "2"
    prometheus.counters = {"1": window(1000), "2": window(200, errors=30)}
    action, _ = rollout.step()
    assert action == "rolled back" and _version_arg(api.isvc) == "1", "rolled back to the champion it served"


def test_passing_windows_step_up_then_promote_and_move_the_champion(cluster: Any, registry: MlflowClient) -> None:
    rollout, api, prometheus = cluster
    rollout.start()
    shares = []
    for n in range(1, 5):
        prometheus.counters = {"1": window(1000 * n), "2": window(200 * n)}
        action, result = rollout.step()
        assert result.verdict == "pass", result.summary
        shares.append(api.isvc["spec"]["predictor"].get("canaryTrafficPercent"))
    assert shares == [25, 50, 100, None]  # promoted: the field is removed, the latest revision takes everything
    assert action == "promoted"
    assert api.core.data()[STABLE] == "2" and CANARY not in api.core.data()
    assert rollout.backend.stable_version() == "2"
    assert str(registry.get_model_version_by_alias("fraud", "champion").version) == "2"
    assert registry.get_model_version("fraud", "2").tags["mlstack.replaced_version"] == "1"


def test_at_100_percent_the_canary_is_judged_against_stables_earlier_windows_pooled(cluster: Any) -> None:
    rollout, _, prometheus = cluster
    rollout.start()
    stable, canary = Snapshot(), Snapshot()
    for stable_window, canary_window in [(900, 100), (750, 250), (500, 500)]:  # 10%, 25%, 50%
        stable, canary = stable.plus(window(stable_window)), canary.plus(window(canary_window))
        prometheus.counters = {"1": stable, "2": canary}
        assert rollout.step()[1].verdict == "pass"
    state = rollout.state()
    assert state is not None and state["share"] == 100
    assert state["reference_stable"]["requests"] == 2150, "every earlier stable window pooled, not the last one"
    prometheus.counters = {"1": stable, "2": canary.plus(window(1000))}
    action, result = rollout.step()
    assert result.stable.requests == 2150 and result.stable.latency[0.01] == 2150
    assert action == "promoted"


@pytest.mark.parametrize(
    ("canary", "reason"),
    [
        (window(200, errors=30), "error rate"),
        (window(200, latency_s=0.25), "latency"),
        (window(200, mean_score=0.8), "prediction scores shifted"),
    ],
)
def test_a_failing_window_rolls_back_at_once(
    cluster: Any, registry: MlflowClient, canary: Snapshot, reason: str
) -> None:
    rollout, api, prometheus = cluster
    rollout.start()
    prometheus.counters = {"1": window(1000), "2": canary}
    action, result = rollout.step()
    assert action == "rolled back" and reason in result.summary
    assert {"spec": {"predictor": {"canaryTrafficPercent": 0}}} in api.patches, "0% pins the stable revision first"
    assert "canaryTrafficPercent" not in api.isvc["spec"]["predictor"] and _version_arg(api.isvc) == "1"
    assert str(registry.get_model_version_by_alias("fraud", "champion").version) == "1"
    assert registry.get_model_version("fraud", "2").tags["mlstack.rollout"].startswith("rolled back")
    with pytest.raises(Exception, match="alias"):
        registry.get_model_version_by_alias("fraud", "challenger")


def test_too_little_traffic_waits_without_moving(cluster: Any) -> None:
    rollout, api, prometheus = cluster
    rollout.start()
    prometheus.counters = {"1": window(1000), "2": window(10)}
    action, result = rollout.step()
    assert action == "waiting" and result.verdict == "inconclusive"
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_kubectl_plugin_commands_drive_the_rollout(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rollout, api, prometheus = cluster
    monkeypatch.setattr(kubectl_plugin, "rollout_for", lambda component, config=None: rollout)
    runner = CliRunner()
    started = runner.invoke(kubectl_plugin.app, ["start", "fraud", "--share", "20"])
    assert started.exit_code == 0 and "takes 20%" in started.output
    assert api.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    prometheus.counters = {"1": window(800), "2": window(200)}
    shown = runner.invoke(kubectl_plugin.app, ["status", "fraud"])
    assert shown.exit_code == 0 and "canary" in shown.output and "pass" in shown.output
    rolled = runner.invoke(kubectl_plugin.app, ["rollback", "fraud"])
    assert rolled.exit_code == 0 and "rolled back fraud v2" in rolled.output
    assert "canaryTrafficPercent" not in api.isvc["spec"]["predictor"]
    again = runner.invoke(kubectl_plugin.app, ["step", "fraud"])
    assert again.exit_code != 0 and "no canary of fraud is running" in str(again.exception)


def test_analysis_quantiles_and_psi() -> None:
    snap = window(100, latency_s=0.02)
    assert 0.01 < snap.quantile(0.99) <= 0.025
    same = psi(window(5000).predictions, window(60).predictions)
    assert same < 0.05, "same distribution, small window: the noise floor is removed"
    assert psi(window(5000).predictions, window(200, mean_score=0.7).predictions) > 1
    assert analyse(window(10), window(10), AnalysisConfig(min_requests=20)).verdict == "inconclusive"
    with pytest.raises(ValueError, match="schedule must rise"):
        RolloutConfig(schedule=(50, 25, 100))


def _classes(requests: int, shares: tuple[float, ...]) -> Snapshot:
    """A multiclass version's window: its latency as ``window``'s, its predicted classes counted, no histogram."""
    counts = dict(zip(("on_time", "late", "very_late"), (requests * s for s in shares), strict=True))
    return dataclasses.replace(window(requests), predictions={}, classes=counts)


def test_predicted_classes_are_judged_by_chi_square_and_the_status_shows_it(cluster: Any) -> None:
    rollout, _api, prometheus = cluster
    rollout.start()
    prometheus.counters = {"1": _classes(1000, (0.7, 0.25, 0.05)), "2": _classes(200, (0.68, 0.26, 0.06))}
    console = Console(width=250, record=True)
    console.print(kubectl_plugin.status_table(rollout))
    shown = console.export_text()
    assert re.search(r"canary .* chi2 p=0\.\d+ V=0\.\d+ .*pass: .* chi-square p 0\.\d+, Cramér's V", shown), shown
    action, result = rollout.step()
    assert action == "stepped to 25%" and "chi-square p" in result.summary and result.shift.statistic == "chi-square"
    assert rollout.state()["history"][-1]["shift_statistic"] == "chi-square"

    prometheus.counters = {"1": _classes(2000, (0.7, 0.25, 0.05)), "2": _classes(400, (0.45, 0.25, 0.30))}
    action, result = rollout.step()
    assert action == "rolled back" and "predicted classes shifted" in result.summary


def test_a_canary_that_never_becomes_ready_is_rolled_back_at_start(cluster: Any, registry: MlflowClient) -> None:
    """A version whose server fails its warm-up would fail every request: ``start`` rolls it back at once, says
    why, and leaves no rollout running (the plugin's ``start`` exits 1 with the reason)."""
    rollout, api, _ = cluster
    backend = rollout.backend

    def never_ready(version: str, share: int) -> None:
        raise CanaryNotReady(f"serving-canary exited: v{version} answered shape (1, 3), expected (1,)")

    backend.start_canary = never_ready
    state = rollout.start()
    assert (
        state["outcome"] == "rolled back" and "canary v2 never became ready: serving-canary exited" in state["reason"]
    )
    assert state["history"][-1]["verdict"] == "fail"
    assert _version_arg(api.isvc) == "1" and "canaryTrafficPercent" not in api.isvc["spec"]["predictor"]
    assert registry.get_model_version("fraud", "2").tags["mlstack.rollout"].startswith("rolled back")
    assert str(registry.get_model_version_by_alias("fraud", "champion").version) == "1"
    with pytest.raises(RolloutError, match="no canary of fraud is running"):
        rollout.step()


def test_the_canarys_first_requests_are_a_warm_up_not_judged(registry: MlflowClient) -> None:
    """A server that just started answers its first requests slower: they are served but not judged, and the
    step's window opens once the warm-up is over (a slow warm-up does not roll the version back)."""
    rollout, _, prometheus = _cluster(registry, "1")
    rollout.config = RolloutConfig(analysis=AnalysisConfig(min_requests=50), warmup_requests=50)
    rollout.start()
    prometheus.counters = {"1": window(300), "2": window(30, latency_s=0.25)}
    action, result = rollout.step()
    assert action == "waiting" and "warming up" in result.summary and "30 of its first 50" in result.summary
    prometheus.counters = {"1": window(600), "2": window(60, latency_s=0.25)}
    action, result = rollout.step()
    assert action == "waiting" and "warmed up" in result.summary
    cold = window(60, latency_s=0.25)
    warm = window(260)
    prometheus.counters = {
        "1": window(2600),
        "2": Snapshot(
            requests=warm.requests + cold.requests,
            latency={le: n + cold.latency.get(le, 0.0) for le, n in warm.latency.items()},
            predictions={le: n + cold.predictions.get(le, 0.0) for le, n in warm.predictions.items()},
        ),
    }
    action, result = rollout.step()
    assert result.verdict == "pass" and action == "stepped to 25%", result.summary
