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


def arguments(description: str) -> argparse.ArgumentParser:
    """The command line of a streaming job (the feature job's, and the monitor job's on the same template)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spec", required=True, help="JSON job spec written from the component's declarations")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--checkpoints", required=True, help="checkpoint URI, e.g. file:///tmp/ckpt/fraud")
    parser.add_argument("--jars", required=True, help="';'-separated jar URIs (the Kafka SQL connector)")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--rest-port", type=int, default=8081)
    parser.add_argument("--checkpoint-interval-s", type=int, default=2)
    return parser


def run(config: dict[str, str], checkpoints: str, tables: list[str], inserts: list[str], rest_port: int) -> None:
    """Configure a streaming table environment, restore the newest checkpoint (pruning earlier runs'), create
    ``tables`` (functions, tables, views), run ``inserts`` together as one job and wait for it."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    began = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    table_config = env.get_config()
    for key, value in config.items():
        table_config.set(key, value)
    restore = latest_checkpoint(checkpoints)
    if restore:
        table_config.set("execution.state-recovery.path", restore)
        print(f"restoring from checkpoint {restore}", flush=True)
    for old in prune_checkpoints(checkpoints, restore):
        print(f"removed checkpoints of an earlier run: {old.name}", flush=True)
    for statement in tables:
        env.execute_sql(statement)
    statement_set = env.create_statement_set()
    for insert in inserts:
        statement_set.add_insert_sql(insert)
    result = statement_set.execute()
    job = result.get_job_client()
    job_id = job.get_job_id() if job else "?"
    print(
        f"{config['pipeline.name']} job {job_id} running after {time.monotonic() - began:.1f}s; "
        f"REST http://127.0.0.1:{rest_port}/jobs",
        flush=True,
    )
    result.wait()


def statements(spec: dict[str, Any], bootstrap: str) -> tuple[list[str], list[str]]:
    """The feature job's functions, tables and views, then its INSERTs."""
    tables = [
        *sql.functions(),
        sql.source_table(spec, bootstrap, ConsumerGroups.of(spec["component"]).job),
        sql.checked_view(spec),
        sql.valid_view(spec),
        sql.features_sink(spec, bootstrap),
        sql.dead_letter_sink(spec, bootstrap),
    ]
    inserts = [sql.group_insert(group, spec["events"].get("kind")) for group in spec["groups"]]
    inserts.append(sql.dead_letter_insert())
    if spec.get("feedback"):
        tables.append(sql.labels_sink(spec, bootstrap))
        inserts.append(sql.labels_insert(spec))
    return tables, inserts


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    tables, inserts = statements(spec, args.bootstrap)
    run(flink_config(args, spec), args.checkpoints, tables, inserts, args.rest_port)


if __name__ == "__main__":
    main()
