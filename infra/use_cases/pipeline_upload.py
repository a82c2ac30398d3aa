"""Uploads a component's compiled training pipeline to Kubeflow Pipelines, and optionally schedules it.

Runs inside the cluster as the component's ``<name>-pipeline-upload-<digest>`` Job (pipeline image; the
program ships this file in the Job's ConfigMap, so the image needs only ``kfp``). Idempotent: the pipeline is
``mlstack-training-<component>``; a package whose content is already a version of it is not uploaded again; the
recurring run ``<pipeline>-schedule`` is replaced to point at the newest version.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

PIPELINE_PREFIX = "mlstack-training"


def version_name(pipeline: str, package: bytes) -> str:
    """A version named by the package's content, so re-running the Job with the same package uploads nothing."""
    return f"{pipeline}-{hashlib.sha256(package).hexdigest()[:12]}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="KFP API, e.g. http://ml-pipeline.kubeflow:8888")
    parser.add_argument("--package", required=True, type=Path, help="compiled pipeline (IR YAML)")
    parser.add_argument("--component", required=True)
    parser.add_argument("--mlflow-uri", required=True)
    parser.add_argument("--feast-repo", required=True)
    parser.add_argument("--offline-root", required=True)
    parser.add_argument("--schedule", default="", help="cron expression (6 fields, KFP's) for a recurring run")
    parser.add_argument(
        "--ray-address", default="", help="Jobs API of the Ray cluster the scheduled runs search on (KubeRay)"
    )
    parser.add_argument("--experiment", default="mlstack")
    parser.add_argument("--wait-s", type=float, default=600, help="how long to wait for the API to answer")
    return parser.parse_args(argv)


def run_params(args: argparse.Namespace) -> dict[str, str]:
    """The scheduled run's parameters; with ``--ray-address`` its search runs on that Ray cluster (the search step
    submits it through the Jobs API), without it inside the step's own pod."""
    params = {
        "component": args.component,
        "mlflow_uri": args.mlflow_uri,
        "feast_repo": args.feast_repo,
        "offline_root": args.offline_root,
    }
    if args.ray_address:
        params["ray_address"] = args.ray_address
    return params


def _client(host: str, wait_s: float) -> Any:
    import kfp

    deadline = time.monotonic() + wait_s
    while True:
        try:
            client = kfp.Client(host=host)
            client.list_experiments(page_size=1)
            return client
        except Exception as error:  # the API server may still be starting after `pulumi up` created it
            if time.monotonic() > deadline:
                raise SystemExit(f"KFP API {host} did not answer in {wait_s:.0f}s: {error}") from error
            time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    client = _client(args.host, args.wait_s)
    name = f"{PIPELINE_PREFIX}-{args.component}"
    package = args.package.read_bytes()
    version = version_name(name, package)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        created = client.upload_pipeline(str(args.package), pipeline_name=name)
        pipeline_id = created.pipeline_id
        print(f"uploaded pipeline {name} ({pipeline_id})")
    versions = client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []
    existing = next((v for v in versions if v.display_name == version), None)
    if existing is None:
        existing = client.upload_pipeline_version(
            str(args.package), pipeline_version_name=version, pipeline_id=pipeline_id
        )
        print(f"uploaded version {version}")
    else:
        print(f"version {version} already uploaded")
    if args.schedule:
        experiment = client.create_experiment(args.experiment)
        job_name = f"{name}-schedule"
        for job in client.list_recurring_runs(experiment_id=experiment.experiment_id).recurring_runs or []:
            if job.display_name == job_name:
                client.delete_recurring_run(job.recurring_run_id)
        client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=job_name,
            cron_expression=args.schedule,
            pipeline_id=pipeline_id,
            version_id=existing.pipeline_version_id,
            params=run_params(args),
            enable_caching=False,
        )
        print(f"scheduled {job_name}: {args.schedule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
