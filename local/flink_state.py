"""The state of a supervised Flink job (the feature job, the monitor job): from the Flink REST API of its
mini-cluster, or from its process when the API does not answer yet."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from local.supervisor_daemon import SupervisorDaemon


def flink_job_state(daemon: SupervisorDaemon, program: str, rest_port_file: Path) -> str:
    """RUNNING, FAILED, ... of the job ``program`` runs; the process state when it is not running; STARTING while
    the REST API (its port in ``rest_port_file``) does not answer or lists no job yet."""
    info = daemon.info(program)
    if not info or info["statename"] != "RUNNING":
        return info["statename"] if info else "NOT STARTED"
    try:
        port = int(rest_port_file.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jobs/overview", timeout=2) as response:
            jobs = json.load(response)["jobs"]
    except (OSError, ValueError, KeyError):
        return "STARTING"
    return str(jobs[-1]["state"]) if jobs else "STARTING"
