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
from pathlib import Path
from typing import Any

from monitoring import monitor_sql
from pipelines.streaming.job import arguments, flink_config, run


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
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    tables, inserts = statements(spec, args.bootstrap)  # refuses a component without feedback before Flink starts
    run(monitor_config(args, spec), args.checkpoints, tables, inserts, args.rest_port)


if __name__ == "__main__":
    main()
