"""The demo's last phases: the challenger's canary under generated traffic, stepped up or rolled back on the
servers' measured evidence, and the rollout report (traffic per version, the analysed windows) saved as PNG."""

from __future__ import annotations

import time
from typing import Any

from cli.demo_progress import CanaryProgress
from cli.demo_state import Demo
from local.model_serving import EmbeddedServing
from local.rollout_report import plot_rollout
from local.traffic import TrafficGenerator, TrafficLog, instances
from serving.rollout.analysis import Analysis
from serving.rollout.rollout import Rollout


def run_canary(demo: Demo, serving: EmbeddedServing, rollout: Rollout, sent: list[dict[str, Any]]) -> None:
    """The challenger's canary under traffic made of the newest ``sent`` events, then its report."""
    options, result, name = demo.options, demo.result, demo.component.name
    with demo.timed("canary"):
        demo.step(7, f"canary of v{result.challenger_version} under {options.traffic_rate:.0f} requests/s")
        rows = instances(demo.component, sent[-2000:])
        analyses: list[tuple[float, Analysis]] = []
        with TrafficGenerator(
            f"{serving.endpoint}/v1/models/{name}:predict", rows, rate=options.traffic_rate, headers=demo.headers
        ) as traffic:
            stable_slot = serving.slots()["stable"]
            slots = {stable_slot: result.champion_version, serving.canary_slot(stable_slot): result.challenger_version}
            # Returns once the canary's server is ready and weighted, or rolled back when it never became ready.
            started = rollout.start(result.challenger_version)
            started_at = time.time()
            if started["outcome"]:
                demo.indent(f"canary {started['outcome']}: {started['reason']}")
                result.canary = started
            else:
                result.canary = _run_canary(demo, rollout, analyses)
            decided_at = time.time()
            time.sleep(2)  # a little traffic after the decision, for the report
        result.canary.update(started_at=started_at, slots=slots)
        result.latency_ms = latency_by_version(traffic.log, slots)
        during = [r for r in traffic.log.since(started_at) if r.at <= decided_at]
        result.canary_responses = {"sent": len(during), "ok": sum(r.status == 200 for r in during)}
    if result.canary.get("paused"):
        demo.indent(
            f"the canary is left paused at {result.canary['share']}% (traffic unchanged): {result.canary['paused']}"
        )
    report_rollout(demo, traffic.log, analyses)


def _run_canary(demo: Demo, rollout: Rollout, analyses: list[tuple[float, Analysis]]) -> dict[str, Any]:
    """Step the running canary to its outcome, each analysed window kept for the report."""
    options = demo.options
    with demo.phases("      canary") as steps:
        steps.start(len(options.rollout.schedule), "steps")
        canary = CanaryProgress(steps, rollout, demo.indent)

        def on_step(analysis: Analysis) -> None:
            analyses.append((time.time(), analysis))
            canary.window(analysis)

        return rollout.run(
            window_s=options.window_s, timeout_s=options.canary_timeout_s, progress=canary.line, on_step=on_step
        )


def report_rollout(demo: Demo, log: TrafficLog, analyses: list[tuple[float, Analysis]]) -> None:
    """The canary's traffic per version and its analysed windows, as a PNG in the state folder's reports."""
    demo.step(8, "rollout report")
    name = demo.component.name
    demo.result.report = plot_rollout(
        name,
        log,
        demo.result.canary,
        analyses,
        demo.settings.state_dir / "reports" / f"{name}-rollout-{time.strftime('%Y%m%d-%H%M%S')}.png",
    )
    demo.indent(f"saved {demo.result.report}")


def quantiles_ms(values: list[float]) -> dict[str, float]:
    """How many, and the p50 and p99 in milliseconds of ``values`` in seconds (nearest rank; empty: nothing)."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"requests": float(len(ordered)), "p50": pick(0.5), "p99": pick(0.99)}


def latency_by_version(log: TrafficLog, slots: dict[str, str]) -> dict[str, dict[str, float]]:
    """Client-side latency per version: the slot HAProxy chose for a response, mapped to the version it served."""
    by_version: dict[str, list[float]] = {}
    for response in log.responses:
        version = slots.get(response.slot, response.slot)
        if response.status == 200:
            by_version.setdefault(f"v{version}", []).append(response.latency_s)
    return {version: quantiles_ms(values) for version, values in by_version.items()}
