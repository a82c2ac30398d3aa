"""Runs of a component's uploaded training pipeline through the Kubeflow Pipelines API: start one, wait for it.

The pipeline is the one ``infra/use_cases/pipeline_upload.py`` uploads (``mlstack-training-<component>``, a version
per package content); a run starts on its newest version in the experiment the schedule uses. The run's display
name is what KFP's backend substitutes for ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER`` (kubeflow/pipelines@2.14.3,
backend/src/v2/driver/resolve.go: ``{{$.pipeline_job_name}}`` -> ``RunDisplayName``), so training tags it on the
MLflow run and the version it registers as ``mlstack.pipeline_run``: the way back from a run to its version.

Calls checked at kfp 2.17.3 (sdk/python/kfp/client/client.py): ``create_experiment`` (gets or creates),
``get_pipeline_id``, ``list_pipeline_versions(sort_by=...)``, ``run_pipeline(experiment_id, job_name, params=,
pipeline_id=, version_id=, enable_caching=)``, ``get_run(run_id).state`` (``V2beta1RuntimeState``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

PIPELINE_PREFIX = "mlstack-training"
"""As ``infra/use_cases/pipeline_upload.py`` names the pipelines (that script imports nothing of the project's)."""
EXPERIMENT = "mlstack"
"""The experiment the scheduled runs go to (pipeline_upload's ``--experiment`` default)."""
FINISHED = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
"""``V2beta1RuntimeState`` values after which a run changes no more."""

Progress = Callable[[str], None]


class RunFailed(RuntimeError):
    """A run that did not start, ended other than SUCCEEDED, or did not end in time."""


def pipeline_name(component: str) -> str:
    return f"{PIPELINE_PREFIX}-{component}"


class PipelineRuns(Protocol):
    """What the retraining trigger needs of Kubeflow Pipelines."""

    def start(self, component: str, params: dict[str, Any], name: str) -> str:
        """Start a run of the component's pipeline named ``name``; its run id."""
        ...

    def state(self, run_id: str) -> str:
        """The run's ``V2beta1RuntimeState`` (``PENDING``, ``RUNNING``, ``SUCCEEDED``, ...)."""
        ...


class KfpRuns:
    """``PipelineRuns`` through ``kfp.Client`` (the SDK pinned in requirements/main.txt)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._client: Any = None

    @property
    def client(self) -> Any:
        """Made at first use: a trigger that starts before the KFP API answers still serves (and logs the failure
        of a run it could not start)."""
        if self._client is None:
            import kfp

            self._client = kfp.Client(host=self.host)
        return self._client

    def start(self, component: str, params: dict[str, Any], name: str) -> str:
        pipeline = pipeline_name(component)
        pipeline_id = self.client.get_pipeline_id(pipeline)
        if pipeline_id is None:
            raise RunFailed(f"no pipeline {pipeline} at {self.host}: has the component's upload Job run?")
        newest = self.client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
        versions = newest.pipeline_versions or []
        if not versions:
            raise RunFailed(f"pipeline {pipeline} at {self.host} has no version")
        experiment = self.client.create_experiment(EXPERIMENT)
        run = self.client.run_pipeline(
            experiment_id=experiment.experiment_id,
            job_name=name,
            params=params,
            pipeline_id=pipeline_id,
            version_id=versions[0].pipeline_version_id,
            enable_caching=False,  # the feature history grows between runs
        )
        return str(run.run_id)

    def state(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).state or "")


def wait_for_run(
    runs: PipelineRuns,
    run_id: str,
    progress: Progress,
    timeout_s: float,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll until the run has finished; its final state. Each change of state is reported once."""
    began, last = clock(), ""
    while True:
        state = runs.state(run_id)
        if state != last:
            progress(f"KFP run {run_id}: {state.lower() or 'no state yet'}")
            last = state
        if state in FINISHED:
            return state
        if clock() - began > timeout_s:
            raise RunFailed(f"KFP run {run_id} did not finish within {timeout_s:.0f}s (last state {state or 'none'})")
        sleep(poll_s)


def registered_version(registry: Any, component: str, pipeline_run: str) -> str:
    """The version the run's gate registered (tagged with the run's display name), "" when it registered none."""
    query = f"name = '{component}' and tags.`mlstack.pipeline_run` = '{pipeline_run}'"
    found = registry.search_model_versions(query)
    return str(max(int(v.version) for v in found)) if found else ""
