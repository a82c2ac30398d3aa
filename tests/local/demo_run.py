"""The demo at test scale, shared by the demo tests and every scaffolded component's lifecycle test: the same
phases as `make demo`, with fewer events and trials and a shorter canary schedule."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import psutil
from mlflow import MlflowClient

from cli.demo import DemoOptions, DemoResult, run_demo
from contract.registry import load
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.streaming import EmbeddedStreaming
from serving.rollout.analysis import AnalysisConfig
from serving.rollout.rollout import CHALLENGER, CHAMPION, RolloutConfig

TEST_ROLLOUT = RolloutConfig(
    schedule=(20, 50, 100),
    # As `mlstack demo` by default: its canary ends before most of its live labels come back.
    analysis=AnalysisConfig(min_requests=30, latency_objective_s=1.0, live_evidence="off"),
)


def small_demo(embedded: EmbeddedServices, name: str, events: int = 12_000) -> DemoResult:
    options = DemoOptions(
        component=name,
        events=events,
        seed=7,
        champion_trials=2,
        challenger_trials=4,
        traffic_rate=25.0,
        window_s=4.0,
        canary_timeout_s=240.0,
        rollout=TEST_ROLLOUT,
        monitor_wait_s=20.0,  # the end-to-end monitoring test waits for labels; here the panel's plumbing
    )
    forget_aliases(embedded, name)
    try:
        result = run_demo(options, progress=print, settings=embedded.settings)
    finally:
        left = stop_component(embedded, name)
    assert left == [], f"{name}'s programs still running after stop: {left}"
    return result


def forget_aliases(embedded: EmbeddedServices, name: str) -> None:
    """Earlier tests of the session may have left a champion (trained on more data than the demo streams): drop the
    aliases, so the demo starts as on a fresh registry and trains its own first model. Versions stay."""
    from mlflow.exceptions import MlflowException

    client = MlflowClient(embedded.settings.mlflow_url)
    for alias in (CHAMPION, CHALLENGER):
        with contextlib.suppress(MlflowException):  # no such model or alias yet
            client.delete_registered_model_alias(name, alias)


def stop_component(embedded: EmbeddedServices, name: str) -> list[str]:
    """What the demo leaves running for a person (streaming, model servers, proxy) stops here, so later tests get
    the machine's two cores back; the shared services stay up. Returns the programs whose processes (or any of
    their children) are still alive afterwards."""
    component = load(name)
    serving, streaming = EmbeddedServing(embedded, component), EmbeddedStreaming(embedded, component)
    programs = [serving.proxy_program, serving.program("a"), serving.program("b")]
    programs += [streaming.job_program, streaming.pusher_program, streaming.archive_program]
    if streaming.monitor is not None:
        programs += [streaming.monitor.job_program, streaming.monitor.exporter_program]
    started: dict[str, list[psutil.Process]] = {}
    for program in programs:
        info = embedded.daemon.info(program)
        if info and info["pid"]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(info["pid"])
                started[program] = [process, *process.children(recursive=True)]
    serving.stop()
    streaming.stop()
    _, alive = psutil.wait_procs([p for processes in started.values() for p in processes], timeout=10)
    return sorted({program for program, processes in started.items() if any(p in alive for p in processes)})


def assert_lifecycle(embedded: EmbeddedServices, result: DemoResult) -> None:
    assert_summary(embedded, result.to_dict())


def assert_summary(embedded: EmbeddedServices, summary: dict[str, Any]) -> None:
    """Features arrived online, a champion is registered, the challenger passed the gate (better than the
    champion, or tied within the metric's tolerance: the demo retrains on more of a stream whose habits do not
    change, so it usually ties) and its canary reached a verdict, with a report and latency per version."""
    assert summary["dead_letters"] == 0
    assert summary["online_sample"], "no online features read back"
    values = [v for row in summary["online_sample"] for k, v in row.items() if "__" in k]
    assert any(isinstance(v, int | float) and not math.isnan(v) for v in values), summary["online_sample"]
    assert summary["pusher"].get("live_windows", 0) > 0, "live windows reached Feast while the later phases ran"
    client = MlflowClient(embedded.settings.mlflow_url)
    champion = str(client.get_model_version_by_alias(summary["component"], CHAMPION).version)
    decision = summary["trainings"]["challenger"]
    assert decision["passed"] and summary["challenger_version"] == decision["version"], decision
    assert decision["champion_version"] == summary["champion_version"] and decision["champion_score"] is not None
    outcome = summary["canary"].get("outcome")
    assert outcome in {"promoted", "rolled back"}, summary["verdict"]
    assert champion == (summary["challenger_version"] if outcome == "promoted" else summary["champion_version"])
    assert summary["report"] and Path(summary["report"]).stat().st_size > 10_000
    assert summary["latency_ms"] and all(figures["requests"] > 0 for figures in summary["latency_ms"].values())
    scored = summary["live_scoring"]
    assert scored["ok"] > 0 and scored["ok"] >= 0.95 * scored["sent"], scored
    if load(summary["component"]).streaming.feedback is None:  # no labels come back: nothing to monitor
        assert not summary["monitor"] and summary["model_report"] is None, summary["monitor"]
        return
    assert any(row["rows"] for row in summary["monitor"].values()), f"no served row monitored: {summary['monitor']}"
    assert summary["model_report"] and Path(summary["model_report"]).stat().st_size > 10_000
