"""The retraining trigger's runs on the cluster: a run of the component's uploaded training pipeline through the KFP
API, then the canary of the version its gate registered, on the component's InferenceService.

``monitoring.retrain_trigger`` decides; this is its cluster ``Launcher`` (``local/retraining.py`` is embedded mode's)
and the program the trigger's Deployment runs (``infra/use_cases/retrain_trigger.py``): shipped in a ConfigMap onto
the pipeline image, as the pipeline upload script is, so it imports only what that image holds (monitoring,
pipelines, serving, kfp, mlflow, kubernetes), never ``infra``. ``mlstack trigger serve --cluster`` runs the same
``serve_cluster`` from a workstation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitoring.retrain_trigger import (
    DEFAULT_COOLDOWN_S,
    Cause,
    Progress,
    RunResult,
    Trigger,
    TriggerPolicy,
    history_start,
    serve,
)
from pipelines.training.kfp_runs import PipelineRuns, RunFailed, registered_version, wait_for_run
from serving.rollout.backend import TrafficBackend
from serving.rollout.rollout import CHAMPION, Rollout, RolloutConfig, RolloutError

COMPONENT = "{component}"
"""Stands for the component's name in ``--offline-root``."""


@dataclass(frozen=True)
class RunTemplate:
    """A component's pipeline arguments, as its upload Job gives the scheduled runs (``pipeline_upload.run_params``)."""

    mlflow_uri: str
    feast_repo: str
    """Where the steps mount the component's Feast repo (the pipeline's platform spec mounts it there)."""
    offline_root: str
    """The component's feature history, ``{component}`` standing for its name."""
    ray_address: str = ""
    history_s: float = 0.0
    """How far back from its start a run's training data reaches (``retrain_trigger.history_start``; 0: all)."""

    def params(self, component: str, cause: Cause, accept_ties: bool) -> dict[str, Any]:
        params: dict[str, Any] = {
            "component": component,
            "mlflow_uri": self.mlflow_uri,
            "feast_repo": self.feast_repo,
            "offline_root": self.offline_root.replace(COMPONENT, component),
            "accept_ties": accept_ties,
            "reason": cause.to_json(),
        }
        if self.ray_address:
            params["ray_address"] = self.ray_address
        if self.history_s > 0:
            params["window_start"] = history_start(self.history_s, time.time())
        return params


def _champion(registry: Any, component: str) -> str:
    """The version the ``champion`` alias names ("" when none does)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(registry.get_model_version_by_alias(component, CHAMPION).version)
    except MlflowException:
        return ""


def run_name(component: str, cause: Cause) -> str:
    """The KFP run's display name: the component, when the trigger acted and what asked. One run per component at a
    time makes it unique, and training tags the version with it (``mlstack.pipeline_run``)."""
    at = cause.at.replace("-", "").replace(":", "")
    return f"retrain-{component}-{at}-{cause.source}"


@dataclass
class ClusterRetrainer:
    """``monitoring.retrain_trigger.Launcher`` for the cluster."""

    runs: PipelineRuns
    registry: Any
    """An ``mlflow.MlflowClient``."""
    backend_for: Callable[[str], TrafficBackend]
    """The component's ``ClusterBackend`` (its InferenceService, rollout ConfigMap and Prometheus counters)."""
    template: RunTemplate
    accept_ties: bool = True
    """As embedded mode's: a retrained model within tolerance of the champion still goes to its canary."""
    run_timeout_s: float = 4 * 3600.0
    poll_s: float = 15.0
    window_s: float = 60.0
    """The canary's analysis window."""
    canary_timeout_s: float = 3600.0
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    sleep: Callable[[float], None] = time.sleep
    """How the run's wait sleeps (tests pass one that does not)."""

    def retrain(self, component: str, cause: Cause, progress: Progress) -> RunResult:
        name = run_name(component, cause)
        run_id = self.runs.start(component, self.template.params(component, cause, self.accept_ties), name)
        progress(f"started KFP run {name} ({run_id})")
        try:
            state = wait_for_run(self.runs, run_id, progress, self.run_timeout_s, self.poll_s, self.sleep)
        except RunFailed as error:
            return RunResult(run_id, "", f"failed: {error}")
        if state != "SUCCEEDED":
            return RunResult(run_id, "", f"failed: KFP run {name} ended {state.lower()}")
        version = registered_version(self.registry, component, name)
        if not version:
            return RunResult(run_id, "", "not registered: the gate kept the champion (see the run's MLflow tags)")
        if _champion(self.registry, component) == version:
            return RunResult(run_id, version, "registered as champion: the model had none, so no canary")
        progress(f"{component} v{version} registered by {name}: starting its canary")
        rollout = Rollout(self.backend_for(component), self.registry, self.rollout)
        try:
            rollout.start(version)
            state_after = rollout.run(window_s=self.window_s, timeout_s=self.canary_timeout_s, progress=progress)
        except RolloutError as error:
            return RunResult(run_id, version, f"no canary: {error}")
        return RunResult(run_id, version, str(state_after.get("outcome") or "paused"))


# -- the process ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterOptions:
    """Where the cluster's services are, and the trigger's own settings."""

    kfp_host: str
    mlflow_uri: str
    prometheus: str
    namespace: str
    """The components' namespace (their InferenceServices and rollout ConfigMaps)."""
    template: RunTemplate
    log: Path
    host: str = "0.0.0.0"
    port: int = 8080
    on_alerts: bool = True
    cooldown_s: float = DEFAULT_COOLDOWN_S
    window_s: float = 60.0
    settle_margin_s: float = 60.0
    """``TriggerPolicy.settle_margin_s``: labelled traffic of the changed world a run waits for, beyond the delay."""

    def __post_init__(self) -> None:
        for name in ("kfp_host", "mlflow_uri", "prometheus"):
            if not getattr(self, name).startswith(("http://", "https://")):
                raise ValueError(
                    f"the trigger's {name.replace('_', ' ')} {getattr(self, name)!r} is not an http(s) URL"
                )
        if not self.namespace:
            raise ValueError("the trigger needs the components' namespace")
        if self.cooldown_s < 0 or self.window_s <= 0:
            raise ValueError(f"cooldown {self.cooldown_s}s must be >= 0 and window {self.window_s}s > 0")


def cluster_retrainer(options: ClusterOptions) -> ClusterRetrainer:
    """The launcher on the real clients: KFP's, MLflow's, and Kubernetes' (in-cluster account, else kubeconfig)."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from mlflow import MlflowClient

    from pipelines.training.kfp_runs import KfpRuns
    from serving.rollout.cluster_backend import ClusterBackend, PrometheusReader
    from serving.rollout.rollout import CHAMPION

    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            kube_config.load_incluster_config()
        else:
            kube_config.load_kube_config()
    except kube_config.ConfigException as error:
        raise ValueError(
            f"no Kubernetes credentials for the rollout (in-cluster account or KUBECONFIG): {error}"
        ) from None
    registry = MlflowClient(options.mlflow_uri)
    custom, core = client.CustomObjectsApi(), client.CoreV1Api()

    def backend_for(component: str) -> TrafficBackend:
        def champion() -> str:
            return str(registry.get_model_version_by_alias(component, CHAMPION).version)

        reader = PrometheusReader(options.prometheus)
        return ClusterBackend(custom, core, options.namespace, component, reader, champion_version=champion)

    return ClusterRetrainer(
        KfpRuns(options.kfp_host), registry, backend_for, options.template, window_s=options.window_s
    )


def serve_cluster(options: ClusterOptions, retrainer: ClusterRetrainer | None = None) -> None:
    """Run the trigger with the cluster's runs until stopped (``ValueError`` naming what is missing)."""
    policy = TriggerPolicy(
        cooldown_s=options.cooldown_s, automatic=options.on_alerts, settle_margin_s=options.settle_margin_s
    )
    launcher = retrainer or cluster_retrainer(options)
    trigger = Trigger(launcher, options.log, policy, progress=lambda line: print(line, flush=True))
    server = serve(trigger, options.host, options.port)
    automatic = "alerts start runs" if options.on_alerts else "alerts are logged only"
    print(f"retraining trigger on http://{options.host}:{options.port} ({automatic}); log {options.log}", flush=True)
    server.serve_forever()


def parse(argv: list[str] | None = None) -> ClusterOptions:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kfp-host", required=True, help="KFP API, e.g. http://ml-pipeline.kubeflow:8888")
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--prometheus", required=True, help="Prometheus' URL (the canary's counters)")
    parser.add_argument("--namespace", required=True, help="the components' namespace")
    parser.add_argument("--feast-repo", required=True, help="where the pipeline's steps mount the Feast repo")
    parser.add_argument("--offline-root", required=True, help=f"feature history; {COMPONENT} for the component")
    parser.add_argument("--ray-address", default="")
    parser.add_argument("--log", type=Path, required=True, help="the decision log (JSON lines)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-on-alerts", action="store_true", help="alerts are logged, start no run")
    parser.add_argument("--cooldown-s", type=float, default=DEFAULT_COOLDOWN_S)
    parser.add_argument("--window-s", type=float, default=60.0, help="the canary's analysis window")
    parser.add_argument("--history-s", type=float, default=0.0, help="seconds of the stream a run trains on (0: all)")
    parser.add_argument(
        "--settle-margin-s", type=float, default=60.0, help="labelled traffic a run waits for, beyond the label delay"
    )
    args = parser.parse_args(argv)
    template = RunTemplate(args.mlflow_uri, args.feast_repo, args.offline_root, args.ray_address, args.history_s)
    return ClusterOptions(
        args.kfp_host, args.mlflow_uri, args.prometheus, args.namespace, template, args.log,
        args.host, args.port, not args.no_on_alerts, args.cooldown_s, args.window_s, args.settle_margin_s,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse(argv)
        retrainer = cluster_retrainer(options)
    except ValueError as error:
        print(f"retraining trigger: {error}", file=sys.stderr)
        return 2
    serve_cluster(options, retrainer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
