"""The monitor job of a component with feedback: served predictions joined with their labels (``monitor_sql``).

The feature job's template (``pipelines.streaming.job``): the same Flink configuration, checkpoints restored on
start and earlier runs' pruned, restart strategy and job spec (``StreamingSpec.to_json_dict``), under its own
pipeline name, consumer group and checkpoint folder. Runs on a local mini-cluster in embedded mode
(``local/monitor.py``) and under the Flink Kubernetes Operator in cluster mode (``infra/use_cases/monitoring.py``).

    python -m monitoring.monitor_job --spec build/streaming/delivery.json --bootstrap 127.0.0.1:9092 \\
        --checkpoints file:///tmp/monitor-ckpt --jars file:///path/flink-sql-connector-kafka.jar
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from monitoring import monitor_sql
from pipelines.streaming.job import flink_config, latest_checkpoint, prune_checkpoints


def monitor_config(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, str]:
    """The feature job's configuration under the monitor's own name."""
    return {**flink_config(args, spec), "pipeline.name": f"{spec['component']}-monitor"}


def statements(spec: dict[str, Any], bootstrap: str) -> tuple[list[str], list[str]]:
    """The tables and views to create, then the INSERTs run together as one job."""
    group = monitor_sql.consumer_group(spec["component"])
    tables = [
        monitor_sql.predictions_source(spec, bootstrap, group),
        monitor_sql.labels_source(spec, bootstrap, group),
        monitor_sql.checked_view(spec),
        monitor_sql.scored_sink(spec, bootstrap),
        monitor_sql.dead_letter_sink(spec, bootstrap),
    ]
    return tables, [monitor_sql.scored_insert(spec), monitor_sql.dead_letter_insert()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON job spec written from the component's declarations")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--checkpoints", required=True, help="checkpoint URI, e.g. file:///state/monitor/delivery")
    parser.add_argument("--jars", required=True, help="';'-separated jar URIs (the Kafka SQL connector)")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--rest-port", type=int, default=8081)
    parser.add_argument("--checkpoint-interval-s", type=int, default=2)
    args = parser.parse_args(argv)

    spec = json.loads(Path(args.spec).read_text())
    tables, inserts = statements(spec, args.bootstrap)  # refuses a component without feedback before Flink starts

    from pyflink.table import EnvironmentSettings, TableEnvironment

    began = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    for key, value in monitor_config(args, spec).items():
        config.set(key, value)
    restore = latest_checkpoint(args.checkpoints)
    if restore:
        config.set("execution.state-recovery.path", restore)
        print(f"restoring from checkpoint {restore}", flush=True)
    for old in prune_checkpoints(args.checkpoints, restore):
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
        f"monitor job {job_id} running after {time.monotonic() - began:.1f}s; "
        f"REST http://127.0.0.1:{args.rest_port}/jobs",
        flush=True,
    )
    result.wait()


if __name__ == "__main__":
    main()
