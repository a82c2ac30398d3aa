"""The rollout: a registry version goes to a canary share, each analysis window decides whether it steps up
the schedule, and it ends promoted (alias ``champion``) or rolled back. Used by the kubectl plugin, the
``mlstack canary`` command and the demo, with either traffic backend.

A window whose stable version is itself failing (verdict ``stable unhealthy``) pauses the rollout rather than
advance or roll back on a comparison it cannot trust: no promotion (the comparison is
against a broken baseline), no step, no rollback (the canary is not the one shown to be at fault) and no change of
traffic. The state keeps the reason as ``paused``; the operator repairs the stable version and steps again (the
window restarts, so the next verdict is on fresh traffic) or ends the rollout with ``rollback`` or ``abort``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from contract.component import ContractError
from contract.live_evaluation import Estimate
from contract.model import Metric
from contract.registry import load
from serving.rollout.analysis import NO_SHIFT, STABLE_UNHEALTHY, Analysis, AnalysisConfig, Snapshot, analyse
from serving.rollout.backend import CanaryNotReady, TrafficBackend

CHAMPION, CHALLENGER = "champion", "challenger"
PAUSED = "paused: stable unhealthy"
"""The action of a step whose stable version failed its own error-rate check."""
Progress = Callable[[str], None]


class RolloutError(RuntimeError):
    """A command that does not fit the rollout's state (e.g. ``step`` with no rollout running)."""


@runtime_checkable
class ReportsTraffic(Protocol):
    """A backend whose platform applies a share asynchronously and reports the split it really routes (KServe
    with Knative: a new revision takes its share only once ready). A backend whose proxy applies a weight at once
    has no such report and does not implement this."""

    def split_pending(self, share: int | None) -> str:
        """Why the reported split is not yet the canary at ``share``% ("" when it is); None: why the service is
        not settled on one version outside a rollout."""
        ...

    def reported_traffic(self) -> dict[str, int]:
        """Percent of requests per model version, as the platform reports them."""
        ...


@dataclass(frozen=True)
class RolloutConfig:
    schedule: tuple[int, ...] = (10, 25, 50, 100)
    """Canary shares in percent; the first is where ``start`` puts it."""
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    warmup_requests: int = 50
    """The canary's first requests are not judged: a server that just started answers them slower (connection
    pools, caches), which the latency test would blame on the version (``benchmarks/canary_guardrails.py``)."""

    def __post_init__(self) -> None:
        shares = list(self.schedule)
        if not shares or shares != sorted(set(shares)) or shares[0] <= 0 or shares[-1] != 100:
            raise ValueError(f"schedule must rise strictly from above 0 to 100, got {self.schedule}")


def _snapshot(data: dict[str, Any]) -> Snapshot:
    live = data.get("live")  # absent from states saved before live labels were read
    return Snapshot(
        requests=data["requests"],
        server_errors=data["server_errors"],
        latency={float(k): v for k, v in data["latency"].items()},
        predictions={float(k): v for k, v in data["predictions"].items()},
        classes=dict(data.get("classes", {})),  # absent from states saved before classes were counted
        live=Estimate(live["value"], live["stderr"], live["count"]) if live else None,
    )


class Rollout:
    def __init__(self, backend: TrafficBackend, mlflow_client: Any, config: RolloutConfig | None = None) -> None:
        self.backend = backend
        self.client = mlflow_client
        self.config = config or RolloutConfig()
        self.name = backend.component
        self._metric: Metric | None = None

    def metric(self) -> Metric | None:
        """The component's metric, which compares the versions on live labels (None: no such component here)."""
        if self._metric is None:
            try:
                self._metric = load(self.name).model.metric
            except ContractError:
                return None
        return self._metric

    # -- state ----------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any] | None:
        return self.backend.load_state()

    def _active(self) -> dict[str, Any]:
        state = self.state()
        if not state or state.get("outcome"):
            raise RolloutError(f"no canary of {self.name} is running: start one with `start {self.name}`")
        return state

    def _baseline(self, state: dict[str, Any]) -> None:
        stable, canary = self.backend.snapshots()
        state["baseline"] = {"stable": asdict(stable), "canary": asdict(canary)}
        state["step_started_at"] = time.time()

    # -- commands -------------------------------------------------------------------------------------------

    def start(
        self, version: str | None = None, share: int | None = None, experiment_s: float | None = None
    ) -> dict[str, Any]:
        """Put ``version`` (default: the ``challenger`` alias) on a canary share (default: the schedule's first).
        A version whose server never becomes ready is rolled back at once: the returned state has its outcome.

        With ``experiment_s``, an experiment (A/B): the share is held for that many seconds, whatever the windows
        say unless a guardrail fails (errors, latency, shift, or shown worse on live labels: rolled back), then
        concluded on live labels (the effect and its interval in ``experiment.result``) with traffic back to
        stable and the aliases untouched: promoting is the operator's call."""
        current = self.state()
        if current and not current.get("outcome"):
            raise RolloutError(
                f"a canary of {self.name} v{current['canary_version']} is already at {current['share']}%: "
                "promote, roll back or abort it first"
            )
        if isinstance(self.backend, ReportsTraffic):
            pending = self.backend.split_pending(None)
            if pending:
                raise RolloutError(f"{self.name} is not settled for a canary: {pending}")
        if version is None:
            version = str(self.client.get_model_version_by_alias(self.name, CHALLENGER).version)
        stable = self.backend.stable_version()
        if version == stable:
            raise RolloutError(f"{self.name} v{version} is already the stable version")
        share = share if share is not None else self.config.schedule[0]
        if not 0 < share < 100:
            raise RolloutError(f"a canary share is between 1 and 99 percent, not {share}")
        state: dict[str, Any] = {
            "component": self.name,
            "stable_version": stable,
            "canary_version": version,
            "share": share,
            "started_at": time.time(),
            "history": [],
            "outcome": None,
            "warmed": self.config.warmup_requests <= 0,
        }
        if experiment_s is not None:
            if experiment_s <= 0:
                raise RolloutError(f"an experiment's horizon is a positive number of seconds, not {experiment_s}")
            state["experiment"] = {"horizon_s": experiment_s, "ends_at": time.time() + experiment_s}
        try:
            self.backend.start_canary(version, share)
        except CanaryNotReady as error:
            # Its warm-up answers a request through the whole response path: a version that fails it would fail
            # every request, so it is rolled back now instead of being given traffic to prove it.
            reason = f"canary v{version} never became ready: {error}"
            state["history"].append({"at": time.time(), "share": share, "verdict": "fail", "reasons": [reason]})
            self.backend.save_state(state)
            return self.rollback(reason)
        self._baseline(state)
        self.backend.save_state(state)
        return state

    def analyse(self) -> Analysis:
        """The current step's window so far: canary vs stable."""
        state = self._active()
        stable_now, canary_now = self.backend.snapshots()
        stable = stable_now.minus(_snapshot(state["baseline"]["stable"]))
        canary = canary_now.minus(_snapshot(state["baseline"]["canary"]))
        if state["share"] >= 100 and state.get("reference_stable"):
            # At 100% the stable version serves nothing: judge the canary against stable's windows of the earlier
            # steps, pooled. Stable's last window alone was small and reused: a chance deviation in it (chi-square
            # p 0.026 at 30%) failed the next comparison too (p 0.0009 at 100%) for a tied challenger.
            stable = _snapshot(state["reference_stable"])
        return analyse(stable, canary, self.config.analysis, self.metric())

    def step(self) -> tuple[str, Analysis]:
        """Analyse the window; on pass move to the next share (or promote after 100%), on fail roll back; with the
        stable version itself unhealthy, pause: traffic unchanged, ``paused`` set, the window restarted.

        Where the backend reports its real split, a window counts only from when the split is the share: until
        then the step waits and the window restarts."""
        state = self._active()
        pending = self.backend.split_pending(state["share"]) if isinstance(self.backend, ReportsTraffic) else ""
        if pending:
            self._baseline(state)
            self.backend.save_state(state)
            reason = f"traffic not yet at {state['share']}%: {pending}"
            return "waiting", Analysis("inconclusive", [reason], Snapshot(), Snapshot(), NO_SHIFT)
        if not state.get("warmed", True):  # states saved before the warm-up existed count as warmed
            return self._warm_up(state)
        result = self.analyse()
        self._record(state, result)
        state.pop("paused", None)
        if result.verdict == STABLE_UNHEALTHY:
            state["paused"] = "; ".join(result.reasons)
            self._baseline(state)  # a repaired stable version is judged on what it serves from now on
            self.backend.save_state(state)
            return PAUSED, result
        if result.verdict == "fail":
            self.backend.save_state(state)
            self.rollback(reason="; ".join(result.reasons))
            return "rolled back", result
        if state.get("experiment"):
            return self._experiment_step(state, result)
        if result.verdict == "inconclusive":
            self.backend.save_state(state)
            return "waiting", result
        later = [s for s in self.config.schedule if s > state["share"]]
        evidence = self.config.analysis.live_evidence
        # The monitor reports the stable version but not yet the canary (its labels have not come back): the
        # component is monitored, so the evidence asked for is the canary's own labels, not their absence.
        unlabelled = evidence != "off" and result.stable.live is not None and result.canary.live is None
        if (not later or later[0] == 100) and (
            unlabelled or (result.live is not None and not result.live.shows(evidence))
        ):
            # All traffic moves only on live evidence: until the labels show it, the canary keeps its share.
            verdict = "no live metric of the canary yet" if unlabelled or result.live is None else result.live.verdict
            state["holding"] = f"for live evidence ({evidence}): {verdict}"
            self.backend.save_state(state)
            return "waiting", result
        state.pop("holding", None)
        if not later:
            self.backend.save_state(state)
            self.promote()
            return "promoted", result
        earlier = state.get("reference_stable")
        state["reference_stable"] = asdict(result.stable.plus(_snapshot(earlier)) if earlier else result.stable)
        state["share"] = later[0]
        self.backend.set_share(later[0])
        self._baseline(state)
        self.backend.save_state(state)
        return f"stepped to {later[0]}%", result

    def _experiment_step(self, state: dict[str, Any], result: Analysis) -> tuple[str, Analysis]:
        """Hold the split until the horizon, then conclude on live labels (a fixed-horizon test: only the final
        comparison decides, so looking at every window does not inflate its error)."""
        experiment = state["experiment"]
        if time.time() < experiment["ends_at"]:
            self.backend.save_state(state)
            return "holding", result
        live, metric = result.live, self.metric()
        if live is None or metric is None:
            experiment["result"] = {"verdict": "no live labels", "summary": "the monitor reported no live metric"}
        else:
            experiment["result"] = {
                "verdict": live.verdict,
                "gain": live.gain,
                "low": live.low,
                "high": live.high,
                "stable_labels": live.stable.count,
                "canary_labels": live.canary.count,
                "summary": live.summary(metric),
            }
        self.backend.rollback()  # traffic back to stable; the aliases stay: promoting is the operator's call
        summary = experiment["result"]["summary"]
        state.update(outcome="experiment ended", share=0, reason=summary, ended_at=time.time())
        self.backend.save_state(state)
        return "experiment ended", result

    def _warm_up(self, state: dict[str, Any]) -> tuple[str, Analysis]:
        """Wait for the canary's first ``warmup_requests``; once served, the step's window opens afresh."""
        _, canary_now = self.backend.snapshots()
        served = canary_now.minus(_snapshot(state["baseline"]["canary"])).requests
        wanted = self.config.warmup_requests
        if served >= wanted:
            state["warmed"] = True
            self._baseline(state)
            reason = f"warmed up: the canary's first {served:.0f} requests are not judged; the window opens now"
        else:
            reason = f"warming up: the canary has served {served:.0f} of its first {wanted} requests, not judged"
        self.backend.save_state(state)
        return "waiting", Analysis("inconclusive", [reason], Snapshot(), Snapshot(), NO_SHIFT)

    def _record(self, state: dict[str, Any], result: Analysis) -> None:
        state["history"].append(
            {
                "at": time.time(),
                "share": state["share"],
                "verdict": result.verdict,
                "reasons": result.reasons,
                "stable_requests": result.stable.requests,
                "canary_requests": result.canary.requests,
                "stable_error_rate": result.stable.error_rate,
                "canary_error_rate": result.canary.error_rate,
                "stable_p99_s": result.stable.quantile(0.99),
                "canary_p99_s": result.canary.quantile(0.99),
                "shift": str(result.shift),
                "shift_statistic": result.shift.statistic,
                "shift_value": result.shift.value,
                "shift_effect": result.shift.effect,
                **(
                    {
                        "live_verdict": result.live.verdict,
                        "live_gain": result.live.gain,
                        "live_low": result.live.low,
                        "live_high": result.live.high,
                        "live_labels": min(result.live.stable.count, result.live.canary.count),
                    }
                    if result.live is not None
                    else {}
                ),
            }
        )

    def promote(self) -> dict[str, Any]:
        """All traffic to the canary, which becomes ``champion``; the previous champion stays registered."""
        state = self._active()
        version = state["canary_version"]
        self.backend.promote()
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        self._drop_challenger(version)
        self.client.set_model_version_tag(self.name, version, "mlstack.rollout", f"promoted {_now()}")
        self.client.set_model_version_tag(self.name, version, "mlstack.replaced_version", state["stable_version"])
        state.update(outcome="promoted", share=100, ended_at=time.time())
        self.backend.save_state(state)
        return state

    def rollback(self, reason: str = "rolled back by an operator") -> dict[str, Any]:
        """All traffic back to the stable version; the canary version is marked and loses ``challenger``."""
        state = self._active()
        version = state["canary_version"]
        self.backend.rollback()
        self._drop_challenger(version)
        self.client.set_model_version_tag(self.name, version, "mlstack.rollout", f"rolled back {_now()}: {reason}")
        state.update(outcome="rolled back", share=0, reason=reason, ended_at=time.time())
        self.backend.save_state(state)
        return state

    def abort(self) -> dict[str, Any]:
        """Stop the rollout without judging the version: traffic back to stable, aliases untouched."""
        state = self._active()
        self.backend.rollback()
        state.update(outcome="aborted", share=0, ended_at=time.time())
        self.backend.save_state(state)
        return state

    def _drop_challenger(self, version: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            current = self.client.get_model_version_by_alias(self.name, CHALLENGER)
        except MlflowException:
            return
        if str(current.version) == str(version):
            self.client.delete_registered_model_alias(self.name, CHALLENGER)

    def run(
        self,
        window_s: float = 10.0,
        timeout_s: float = 600.0,
        progress: Progress = print,
        on_step: Callable[[Analysis], None] | None = None,
    ) -> dict[str, Any]:
        """Step every ``window_s`` until promoted, rolled back or paused (traffic must be flowing meanwhile).

        A pause (the stable version unhealthy) ends the loop with the rollout still running at its share: the
        returned state has no ``outcome`` and its ``paused`` says why."""
        began = time.monotonic()
        while True:
            time.sleep(window_s)
            share = self._active()["share"]
            action, result = self.step()
            progress(f"canary at {share}%: {result.summary} -> {action}")
            if on_step:
                on_step(result)
            if action in {"promoted", "rolled back", "experiment ended", PAUSED}:
                state = self.state()
                assert state is not None
                return state
            if time.monotonic() - began > timeout_s:
                self.abort()
                raise RolloutError(f"rollout of {self.name} did not finish within {timeout_s:.0f}s; aborted")


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")
