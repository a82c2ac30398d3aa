"""Embedded mode's monitor of a component with feedback: the monitor job (``monitoring.monitor_job``, predictions
joined with their labels onto ``<c>.scored``) and the monitor exporter (``monitoring.exporter``, the windows'
numbers on a ``/metrics`` port Prometheus discovers from a target file, and the history under the state folder), as
supervised processes started and stopped with the component's streaming (``local/streaming.py``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from contract import Component
from local.alerting import remove_targets, write_targets
from local.errors import EmbeddedError
from local.flink_state import flink_job_state
from local.java_runtime import java_executable
from local.paths import REPO_ROOT, STREAMING_VENV, main_module, venv_bin
from local.service_spec import free_port, port_free
from local.services import EmbeddedServices, Progress
from local.supervisor_daemon import log_tail
from monitoring.monitor_sql import consumer_group
from pipelines.streaming.launch import StreamingLaunch

MONITOR_MODULE = "monitoring.monitor_job"
EXPORTER_MODULE = "monitoring.exporter"
#: Half the feature job's heap: the join keeps a few short columns per prediction for ``max_delay_s``.
MONITOR_JVM_ARGS = "-Xmx512m -XX:+UseParallelGC"
JOB_START_TIMEOUT_S = 180


class EmbeddedMonitor:
    """The monitor job and exporter of one streaming component; only a component with feedback has them."""

    def __init__(
        self,
        services: EmbeddedServices,
        component: Component,
        streaming_root: Path,
        launch: Callable[[int], StreamingLaunch],
        python_path: tuple[str, ...] = (),
    ) -> None:
        """``launch``: the feature job's launch for a REST port (``EmbeddedStreaming.launch``), whose spec, Kafka,
        jars and parallelism the monitor job shares; ``python_path`` as the streaming's workers import."""
        self.services = services
        self.settings = services.settings
        self.component = component
        if component.streaming.feedback is None:
            raise EmbeddedError(f"{component.name} declares no feedback: it has no labels to monitor against")
        self.root = streaming_root / "monitor"
        self.launch = launch
        self.python_path = python_path
        self.job_program = f"monitor-{self.component.name}"
        self.exporter_program = f"monitor-exporter-{self.component.name}"
        #: The exporter's ``(window_s, slide_s)``; None keeps its defaults (a test shortens the slide to see a
        #: window within seconds).
        self.exporter_window: tuple[float, float] | None = None

    @property
    def checkpoints(self) -> str:
        """The monitor job's own checkpoint folder (the feature job prunes every other run under its own)."""
        return f"file://{self.root / 'checkpoints'}"

    @property
    def history(self) -> Path:
        """The offline store's monitor history; the exporter writes ``<history>/<component>/date=.../*.parquet``."""
        return self.settings.state_dir / "monitoring" / "history"

    def _port(self, name: str, program: str) -> int:
        """A port kept across restarts (the target file and a running program keep pointing at it)."""
        path = self.root / name
        if path.exists() and (self.services.daemon.is_running(program) or port_free(int(path.read_text()))):
            return int(path.read_text())
        port = free_port()
        path.write_text(str(port))
        return port

    def rest_port(self) -> int:
        return self._port("rest_port", self.job_program)

    def metrics_port(self) -> int:
        """Where the exporter serves ``/metrics``."""
        return self._port("metrics_port", self.exporter_program)

    def job_args(self, rest_port: int) -> list[str]:
        """The feature job's arguments (same spec, Kafka, jars, parallelism) with the monitor's checkpoints."""
        launch = dataclasses.replace(self.launch(rest_port), checkpoints=self.checkpoints)
        return launch.job_args()

    def exporter_args(self, metrics_port: int) -> list[str]:
        return [
            "--component", self.component.name,
            "--bootstrap", self.settings.kafka_bootstrap,
            "--tracking-uri", self.settings.mlflow_url,
            "--metrics-port", str(metrics_port),
            "--history", str(self.history),
            *(("--window-s", str(self.exporter_window[0]), "--slide-s", str(self.exporter_window[1]))
              if self.exporter_window is not None else ()),
        ]  # fmt: skip

    def start(self, progress: Progress = print, exporter: bool = True) -> None:
        """Start the job (unless it runs) and, with ``exporter``, the exporter; the topics and the job spec must
        exist (``EmbeddedStreaming.start``, or its ``ensure_topics`` and ``write_spec``). Does not wait for the job."""
        self.root.mkdir(parents=True, exist_ok=True)
        daemon = self.services.daemon
        if not daemon.is_running(self.job_program):
            port = self.rest_port()
            command = (str(venv_bin(STREAMING_VENV, "python")), "-m", MONITOR_MODULE, *self.job_args(port))
            env = {
                "PYTHONPATH": str(REPO_ROOT),
                "JAVA_HOME": str(Path(java_executable()).resolve().parent.parent),
                "JVM_ARGS": MONITOR_JVM_ARGS,
                "FLINK_LOG_DIR": str(self.settings.state_dir / "logs" / f"flink-monitor-{self.component.name}"),
            }
            daemon.register(self.job_program, command, env, 30, REPO_ROOT, restart_on_crash=True)
            daemon.start(self.job_program)
            progress(f"{self.job_program}: monitor job starting (REST http://127.0.0.1:{port})")
        if not exporter:
            return
        port = self.metrics_port()
        # The streaming's import path: a component registered only for a test is found as its workers find it.
        env = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *self.python_path])}
        command = main_module(EXPORTER_MODULE, *self.exporter_args(port))
        daemon.register(self.exporter_program, command, env, 30, REPO_ROOT, restart_on_crash=True)
        daemon.start(self.exporter_program)
        write_targets(self.settings, "monitoring", self.exporter_program, [f"127.0.0.1:{port}"], {})
        progress(f"{self.exporter_program}: metrics on http://127.0.0.1:{port}/metrics")

    def wait_running(self, progress: Progress = print, timeout_s: float = JOB_START_TIMEOUT_S) -> None:
        began = time.monotonic()
        while self.job_state() != "RUNNING":
            if time.monotonic() - began > timeout_s:
                raise EmbeddedError(
                    f"monitor job of {self.component.name} not running after {timeout_s:.0f}s: "
                    f"{log_tail(self.services.daemon.log_path(self.job_program))}"
                )
            time.sleep(0.5)
        progress(f"{self.job_program}: job RUNNING after {time.monotonic() - began:.1f}s")

    def stop(self) -> None:
        """Stop both (the job keeps its checkpoints) and withdraw the exporter's scrape target."""
        for program in (self.job_program, self.exporter_program):
            self.services.daemon.stop(program)
        remove_targets(self.settings, "monitoring", self.exporter_program)

    @property
    def group(self) -> str:
        """The job's consumer group (``EmbeddedStreaming.reset`` deletes it with the component's others)."""
        return consumer_group(self.component.name)

    def reset(self) -> None:
        """Stop, and forget the job's checkpoints (its group and topics are deleted with the streaming's)."""
        self.stop()
        shutil.rmtree(self.root / "checkpoints", ignore_errors=True)

    def job_state(self) -> str:
        """State of the job from its REST API, or the process state when the API does not answer."""
        return flink_job_state(self.services.daemon, self.job_program, self.root / "rest_port")
