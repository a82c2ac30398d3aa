"""The search on a Ray cluster (KubeRay in cluster mode), through the Ray Jobs API: the supported way to run
Tune remotely (the Ray Client is not).

The pipeline task ships the two splits as the job's working directory, so the Ray cluster needs no access to
the pipeline's artifact store; the job's entrypoint is this module, already in the cluster's image, and its last
log line carries the result back.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

RESULT_MARK = "MLSTACK_SEARCH_RESULT "
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def submit(
    ray_address: str,
    component: str,
    mlflow_uri: str,
    experiment_id: str,
    run_id: str,
    train_path: str,
    validation_path: str,
    settings: Any,
    progress: Callable[[str], None] = print,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """Submit the search as a Ray job, follow it, and return its result (as ``steps.search`` does locally)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(ray_address)
    with tempfile.TemporaryDirectory(prefix="mlstack-search-") as folder:
        shutil.copy(train_path, Path(folder) / "train.parquet")
        shutil.copy(validation_path, Path(folder) / "validation.parquet")
        entrypoint = " ".join(
            [
                "python -m pipelines.training.remote_search",
                f"--component {component} --mlflow-uri {mlflow_uri}",
                f"--experiment-id {experiment_id} --run-id {run_id}",
                f"--settings '{json.dumps(asdict(settings))}'",
            ]
        )
        job = client.submit_job(
            entrypoint=entrypoint,
            submission_id=f"mlstack-search-{run_id}",
            runtime_env={"working_dir": folder},
        )
    progress(f"submitted search job {job} to {ray_address}")
    began = time.monotonic()
    status = ""
    while status not in TERMINAL:
        if time.monotonic() - began > timeout_s:
            client.stop_job(job)
            raise TimeoutError(f"search job {job} did not finish within {timeout_s:.0f}s; stopped it")
        time.sleep(5)
        new = str(client.get_job_status(job))
        if new != status:
            progress(f"search job {job}: {new}")
            status = new
    logs = client.get_job_logs(job)
    if not status.endswith("SUCCEEDED"):
        tail = "\n".join(logs.strip().splitlines()[-20:])
        raise RuntimeError(f"search job {job} ended {status}:\n{tail}")
    return result_from_logs(logs)


def result_from_logs(logs: str) -> dict[str, Any]:
    for line in reversed(logs.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    raise RuntimeError("the search job finished without reporting a result")


def main(argv: list[str] | None = None) -> None:
    """The job's entrypoint, on the Ray cluster, in the job's working directory."""
    import pandas as pd
    import ray

    from contract.registry import load
    from pipelines.training.search import SearchSettings, TrialData, describe, run_search

    parser = argparse.ArgumentParser(description="Run a component's search on the Ray cluster of this job.")
    parser.add_argument("--component", required=True)
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--experiment-id", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--settings", required=True, help="SearchSettings as JSON")
    parser.add_argument("--data", type=Path, default=Path(), help="folder holding train/validation.parquet")
    args = parser.parse_args(argv)

    model = load(args.component).model
    train, validation = pd.read_parquet(args.data / "train.parquet"), pd.read_parquet(args.data / "validation.parquet")
    data = TrialData.of(model, train, validation)
    if data.without_values:
        print(f"model inputs without a value in any training row, fitted as constants: {data.without_values}")
    settings = SearchSettings(**json.loads(args.settings))
    if not ray.is_initialized():
        ray.init(address="auto")  # the cluster this job was submitted to
    with tempfile.TemporaryDirectory(prefix="mlstack-tune-") as storage:
        result = run_search(model, data, settings, args.mlflow_uri, args.experiment_id, args.run_id, Path(storage))
    print(describe(model.metric, result), flush=True)
    print(RESULT_MARK + json.dumps(result.to_dict()), flush=True)


if __name__ == "__main__":
    main()
