"""The streaming feature job: Kafka events -> Flink SQL window aggregations -> Kafka features + dead letters.

Runs in the streaming environment (PyFlink) on a local mini-cluster in embedded mode, and under the Flink
Kubernetes Operator in cluster mode (``PythonDriver -py job.py --spec ...``). Checkpoints every few seconds and
restores from the newest retained checkpoint on start, so a killed job resumes without losing or re-counting
events.

    python -m pipelines.streaming.job --spec build/streaming/fraud.json --bootstrap 127.0.0.1:9092 \
        --checkpoints file:///tmp/ckpt --jars file:///path/flink-sql-connector-kafka.jar
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipelines.streaming import sql
from pipelines.streaming.launch import ConsumerGroups


def latest_checkpoint(checkpoints: str) -> str | None:
    """The newest complete checkpoint (a ``chk-N`` folder with ``_metadata``) under a local checkpoint URI.

    None for object storage: on the cluster the operator restores the job from its HA metadata instead."""
    if urlparse(checkpoints).scheme not in {"", "file"}:
        return None
    root = Path(urlparse(checkpoints).path)
    complete = [meta.parent for meta in root.glob("*/chk-*/_metadata")]
    return str(max(complete, key=lambda p: p.stat().st_mtime)) if complete else None


def prune_checkpoints(checkpoints: str, keep: str | None) -> list[Path]:
    """Remove the checkpoint folders of earlier runs (each run has a new job id), except the one holding ``keep``.

    Only after a restore point is chosen; local checkpoint URIs only. Returns what was removed.
    """
    import shutil

    root = Path(urlparse(checkpoints).path)
    if urlparse(checkpoints).scheme not in {"", "file"} or not root.is_dir():
        return []
    keep_job = Path(keep).parent if keep else None
    removed = [job for job in root.iterdir() if job.is_dir() and job != keep_job]
    for job in removed:
        shutil.rmtree(job, ignore_errors=True)
    return removed


def flink_config(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, str]:
    return {
        "pipeline.jars": args.jars,
        "pipeline.name": f"{spec['component']}-features",
        "parallelism.default": str(args.parallelism),
        "table.local-time-zone": "UTC",
        # Operators in a chain hand rows on without a defensive copy (our SQL never holds on to an input row).
        "pipeline.object-reuse": "true",
        # Watermarks (and so window results) move every 50 ms instead of 200 ms: freshness over overhead.
        "pipeline.auto-watermark-interval": "50 ms",
        "rest.port": str(args.rest_port),
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "metrics.fetcher.update-interval": "1 s",
        "execution.checkpointing.interval": f"{args.checkpoint_interval_s} s",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.storage": "filesystem",
        "execution.checkpointing.dir": args.checkpoints,
        "execution.checkpointing.num-retained": "2",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": "hashmap",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000000",
        "restart-strategy.fixed-delay.delay": "2 s",
        # No source idleness: a partition that goes quiet (e.g. while the broker restarts) would drop out of
        # the watermark, and its events would count as late once it resumes. Bounded replays end with a
        # watermark marker on every partition instead (see producer.advance_watermark).
        "table.exec.source.idle-timeout": "0 ms",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON job spec written from the component's declarations")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--checkpoints", required=True, help="checkpoint URI, e.g. file:///state/flink/fraud")
    parser.add_argument("--jars", required=True, help="';'-separated jar URIs (the Kafka SQL connector)")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--rest-port", type=int, default=8081)
    parser.add_argument("--checkpoint-interval-s", type=int, default=2)
    args = parser.parse_args(argv)

    from pyflink.table import EnvironmentSettings, TableEnvironment

    spec = json.loads(Path(args.spec).read_text())
    began = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    for key, value in flink_config(args, spec).items():
        config.set(key, value)
    restore = latest_checkpoint(args.checkpoints)
    if restore:
        config.set("execution.state-recovery.path", restore)
        print(f"restoring from checkpoint {restore}", flush=True)
    for old in prune_checkpoints(args.checkpoints, restore):
        print(f"removed checkpoints of an earlier run: {old.name}", flush=True)

    for statement in sql.functions():
        env.execute_sql(statement)
    env.execute_sql(sql.source_table(spec, args.bootstrap, ConsumerGroups.of(spec["component"]).job))
    env.execute_sql(sql.checked_view(spec))
    env.execute_sql(sql.valid_view(spec))
    env.execute_sql(sql.features_sink(spec, args.bootstrap))
    env.execute_sql(sql.dead_letter_sink(spec, args.bootstrap))
    statements = env.create_statement_set()
    for group in spec["groups"]:
        statements.add_insert_sql(sql.group_insert(group, spec["events"].get("kind")))
    statements.add_insert_sql(sql.dead_letter_insert())
    if spec.get("feedback"):
        env.execute_sql(sql.labels_sink(spec, args.bootstrap))
        statements.add_insert_sql(sql.labels_insert(spec))
    result = statements.execute()
    job = result.get_job_client()
    job_id = job.get_job_id() if job else "?"
    print(
        f"job {job_id} running after {time.monotonic() - began:.1f}s; REST http://127.0.0.1:{args.rest_port}/jobs",
        flush=True,
    )
    result.wait()


if __name__ == "__main__":
    main()
