"""The retraining trigger's runs in embedded mode: the training pipeline through the KFP local runner on the
embedded stores, then the canary of the version its gate registered, on the served slots behind HAProxy.

The cluster's launcher does the same through the KFP API and the InferenceService (``cli/retrain_cli.py`` picks
one); the decisions around both are ``monitoring.retrain_trigger``'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mlflow import MlflowClient

from contract.registry import load
from local.errors import EmbeddedError
from local.model_serving import EmbeddedBackend, EmbeddedServing
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.training import embedded_params, pipeline_root
from monitoring.retrain_trigger import Cause, Progress, RunResult, history_start
from pipelines.training.runner import run_local
from serving.rollout.rollout import CHAMPION, Rollout, RolloutConfig, RolloutError


@dataclass
class EmbeddedRetrainer:
    """``monitoring.retrain_trigger.Launcher`` for embedded mode."""

    settings: EmbeddedSettings
    trials: int = 6
    concurrency: int = 2
    accept_ties: bool = True
    """A retrained model within the tolerance of the champion on the newest holdout still goes to its canary: it
    learnt from the data the alert was about, and live traffic judges it."""
    window_s: float = 30.0
    """The canary's analysis window."""
    history_s: float = 0.0
    """How far back from its start a run's training data reaches (``retrain_trigger.history_start``; 0: all)."""
    canary_timeout_s: float = 1800.0
    rollout: RolloutConfig = field(default_factory=RolloutConfig)

    def retrain(self, component: str, cause: Cause, progress: Progress) -> RunResult:
        params = embedded_params(
            self.settings,
            component,
            trials=self.trials,
            concurrency=self.concurrency,
            accept_ties=self.accept_ties,
            reason=cause.to_json(),
            window_start=history_start(self.history_s, time.time()),
        )
        run = run_local(params, pipeline_root(self.settings), progress=progress)
        decision = run.decision
        if not decision.get("passed") or not decision.get("version"):
            return RunResult("", "", f"not registered: {decision.get('reason', '')}")
        version = str(decision["version"])
        registry = MlflowClient(self.settings.mlflow_url)
        run_id = str(registry.get_model_version(component, version).run_id or "")
        if decision.get("alias") == CHAMPION:
            return RunResult(run_id, version, "registered as champion: the model had none, so no canary")
        serving = EmbeddedServing(EmbeddedServices(self.settings), load(component))
        try:
            rollout = Rollout(EmbeddedBackend(serving, progress), registry, self.rollout)
            rollout.start(version)
        except (EmbeddedError, RolloutError) as error:
            return RunResult(run_id, version, f"no canary: {error}")
        state = rollout.run(window_s=self.window_s, timeout_s=self.canary_timeout_s, progress=progress)
        return RunResult(run_id, version, str(state.get("outcome") or "paused"))
