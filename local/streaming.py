"""Embedded mode's streaming for one component: topics, the Flink job and the Feast pusher as supervised
processes beside the platform services, and their status (job state, lag, dead letters)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract import Component
from contract.streaming import topics
from local.alerting import remove_targets, write_targets
from local.errors import EmbeddedError
from local.flink_state import flink_job_state
from local.java_runtime import java_executable
from local.monitor import EmbeddedMonitor
from local.paths import FLINK_JARS, FLINK_UDF_JARS, REPO_ROOT, STREAMING_VENV, main_module, venv_bin
from local.service_spec import free_port, port_free
from local.services import EmbeddedServices, Progress
from local.supervisor_daemon import log_tail
from pipelines.features.feast_repo import FeastTarget, apply
from pipelines.streaming.launch import ARCHIVE_MODULE, JOB_MODULE, PUSHER_MODULE, ConsumerGroups, StreamingLaunch

#: A small heap, and the throughput collector: G1's concurrent threads would compete with Kafka and the pusher
#: for the machine's cores (about 1.2x the sustained events/s of G1 in benchmarks/streaming_throughput.py).
FLINK_JVM_ARGS = "-Xmx1g -XX:+UseParallelGC"
JOB_START_TIMEOUT_S = 180


@dataclass(frozen=True)
class StreamingStatus:
    component: str
    job_state: str
    events_in_topic: int
    events_lag: int
    features_lag: int
    archive_lag: int
    dead_letters: int

    @property
    def caught_up(self) -> bool:
        """Every event is checkpointed by the job, archived for training, and its features are in Feast."""
        return self.job_state == "RUNNING" and not (self.events_lag or self.features_lag or self.archive_lag)


class EmbeddedStreaming:
    """Runs a component's streaming features on the embedded services."""

    def __init__(
        self,
        services: EmbeddedServices,
        component: Component,
        flush_every_s: float = 10.0,
        parallelism: int = 1,
        python_path: tuple[str, ...] = (),
    ) -> None:
        """``python_path``: folders the pusher and archive import from besides the repo (a component registered
        only for a test, see ``tests.support.kinds_component``)."""
        self.services = services
        self.parallelism = parallelism
        self.flush_every_s = flush_every_s
        self.component = component
        self.settings = services.settings
        self.root = self.settings.state_dir / "streaming" / component.name
        self.feast_root = self.settings.state_dir / "feast" / component.name
        self.python_path = python_path
        # <c>.labels too when the component's labels arrive as their own events.
        self.topics = topics(component.name, labels=component.streaming.feedback is not None)
        self.groups = ConsumerGroups.of(component.name)
        self.job_program = f"stream-{component.name}"
        self.pusher_program = f"push-{component.name}"
        self.archive_program = f"archive-{component.name}"
        # Predictions joined with their labels: only when labels come back (monitor-<c>, monitor-exporter-<c>).
        self.monitor = (
            EmbeddedMonitor(services, component, self.root, lambda port: self.launch(rest_port=port), python_path)
            if component.streaming.feedback is not None
            else None
        )

    # -- Feast ----------------------------------------------------------------------------------------------

    @property
    def feast_target(self) -> FeastTarget:
        return FeastTarget(
            registry=str(self.feast_root / "registry.db"),
            redis=self.settings.redis_address,
            offline_root=str(self.feast_root / "offline"),
        )

    @property
    def stats_path(self) -> Path:
        """Counters and freshness the pusher writes after each history flush."""
        return self.root / "pusher-stats.json"

    def pusher_stats(self) -> dict[str, float]:
        try:
            stats: dict[str, float] = json.loads(self.stats_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return stats

    @property
    def repo(self) -> Path:
        return self.feast_root / "repo"

    def feature_store(self) -> Any:
        """The component's Feast store (applying its definitions first)."""
        return apply(self.component, self.repo, self.feast_target)

    # -- topics ---------------------------------------------------------------------------------------------

    def ensure_topics(self) -> None:
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic  # where it is defined and typed; admin re-exports it untyped

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 3})
        existing = set(admin.list_topics(timeout=10).topics)
        partitions = self.component.streaming.partitions
        wanted = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in self.topics.values()]
        missing = [t for t in wanted if t.topic not in existing]
        deadline = time.monotonic() + 60
        while missing:
            retry = []
            for topic, future in zip(missing, admin.create_topics(missing).values(), strict=True):
                try:
                    future.result(30)
                except Exception as error:
                    # A topic deleted a moment ago (reset) is still being removed: try again shortly.
                    if "marked for deletion" not in str(error) or time.monotonic() > deadline:
                        raise EmbeddedError(f"cannot create topic {topic.topic}: {error}") from None
                    retry.append(topic)
            missing = retry
            time.sleep(0.5 if missing else 0)

    def reset(self, progress: Progress = print) -> None:
        """Forget everything streamed so far: stop the job and pusher, delete the topics, consumer groups,
        checkpoints, feature history and online features. The next ``start`` begins from nothing."""
        import shutil

        from confluent_kafka.admin import AdminClient

        self.stop()
        if self.monitor is not None:
            self.monitor.reset()
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 3})
        existing = [t for t in self.topics.values() if t in admin.list_topics(timeout=10).topics]
        if existing:
            for future in admin.delete_topics(existing).values():
                future.result(30)
        groups = [*self.groups.all(), *([self.monitor.group] if self.monitor is not None else [])]
        for future in admin.delete_consumer_groups(groups).values():
            with contextlib.suppress(Exception):  # a group that never committed does not exist
                future.result(30)
        if (self.repo / "feature_store.yaml").exists():
            with contextlib.suppress(Exception):
                self.feature_store().teardown()  # drops the online rows of this project
        shutil.rmtree(self.root / "checkpoints", ignore_errors=True)
        shutil.rmtree(self.feast_target.offline_root, ignore_errors=True)
        self.stats_path.unlink(missing_ok=True)
        progress(f"reset streaming of {self.component.name}: topics, consumer groups, checkpoints and features")

    # -- processes ------------------------------------------------------------------------------------------

    def rest_port(self) -> int:
        path = self.root / "rest_port"
        if path.exists():
            return int(path.read_text())
        port = free_port()
        path.write_text(str(port))
        return port

    def metrics_port(self) -> int:
        """Where the pusher serves its freshness histogram; kept across restarts, like the job's REST port."""
        path = self.root / "metrics_port"
        if path.exists() and (self.services.daemon.is_running(self.pusher_program) or port_free(int(path.read_text()))):
            return int(path.read_text())
        port = free_port()
        path.write_text(str(port))
        return port

    def launch(self, rest_port: int | None = None, metrics_port: int | None = None) -> StreamingLaunch:
        """Where this machine's job, pusher and archive run against: the embedded Kafka, the state folder, the
        jars ``make setup`` fetched and built (the job's REST port when it is known)."""
        jars = sorted([*FLINK_JARS.glob("*.jar"), *FLINK_UDF_JARS.glob("*.jar")])
        return StreamingLaunch(
            component=self.component,
            bootstrap=self.settings.kafka_bootstrap,
            spec=str(self.spec_path),
            checkpoints=f"file://{self.root / 'checkpoints'}",
            jars=tuple(f"file://{jar}" for jar in jars),
            parallelism=self.parallelism,
            feast_repo=str(self.repo),
            offline_root=self.feast_target.offline_root,
            rest_port=rest_port,
            flush_every_s=self.flush_every_s,
            stats=str(self.stats_path),
            metrics_port=metrics_port,
        )

    @property
    def spec_path(self) -> Path:
        """The job spec (``StreamingSpec.to_json_dict``), written on each start."""
        return self.root / "spec.json"

    def write_spec(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.spec_path.write_text(json.dumps(self.component.streaming.to_json_dict(self.component.name), indent=2))

    def start(self, progress: Progress = print) -> None:
        """Create topics, apply the Feast repo, and run the Flink job and the pusher until the job is RUNNING; then
        the monitor, for a component with feedback (not waited for)."""
        if not FLINK_JARS.is_dir() or not any(FLINK_JARS.glob("flink-sql-connector-kafka-*.jar")):
            raise EmbeddedError(f"the Flink Kafka connector is missing from {FLINK_JARS}: run `make setup`")
        if not FLINK_UDF_JARS.is_dir() or not any(FLINK_UDF_JARS.glob("streaming-udf-*.jar")):
            raise EmbeddedError(f"the streaming job's functions are missing from {FLINK_UDF_JARS}: run `make setup`")
        if not venv_bin(STREAMING_VENV, "python").exists():
            raise EmbeddedError("the streaming environment .venv-streaming is missing: run `make setup`")
        self.root.mkdir(parents=True, exist_ok=True)
        self.ensure_topics()
        self.feature_store()
        self.write_spec()
        daemon = self.services.daemon
        job_state = self.job_state()
        if job_state != "RUNNING":
            port = self.rest_port()
            if not port_free(port):
                (self.root / "rest_port").unlink()
                port = self.rest_port()
            launch = self.launch(rest_port=port)
            command = (str(venv_bin(STREAMING_VENV, "python")), "-m", JOB_MODULE, *launch.job_args())
            java_home = str(Path(java_executable()).resolve().parent.parent)
            env = {
                "PYTHONPATH": str(REPO_ROOT),
                "JAVA_HOME": java_home,
                "JVM_ARGS": FLINK_JVM_ARGS,
                "FLINK_LOG_DIR": str(self.settings.state_dir / "logs" / f"flink-{self.component.name}"),
            }
            daemon.register(self.job_program, command, env, 30, REPO_ROOT, restart_on_crash=True)
            daemon.start(self.job_program)
            progress(f"{self.job_program}: Flink job starting (REST http://127.0.0.1:{port})")
        launch = self.launch(metrics_port=self.metrics_port())
        self._start_worker(self.pusher_program, main_module(PUSHER_MODULE, *launch.pusher_args()))
        write_targets(self.settings, "monitoring", self.pusher_program, [f"127.0.0.1:{launch.metrics_port}"], {})
        self._start_worker(self.archive_program, main_module(ARCHIVE_MODULE, *launch.archive_args()))
        self._wait_running(progress)
        if self.monitor is not None:
            self.monitor.start(progress)
        daemon.record_pids()

    def _start_worker(self, program: str, command: tuple[str, ...]) -> None:
        """A main-environment worker, restarted on a crash (it resumes from its committed offsets)."""
        daemon = self.services.daemon
        env = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *self.python_path])}
        daemon.register(program, command, env, 30, REPO_ROOT, restart_on_crash=True)
        daemon.start(program)

    def _wait_running(self, progress: Progress) -> None:
        began = time.monotonic()
        daemon = self.services.daemon
        while True:
            for program in (self.job_program, self.pusher_program, self.archive_program):
                daemon.running_info(program)
            if self.job_state() == "RUNNING":
                progress(f"{self.job_program}: job RUNNING after {time.monotonic() - began:.1f}s")
                return
            if time.monotonic() - began > JOB_START_TIMEOUT_S:
                raise EmbeddedError(
                    f"Flink job of {self.component.name} not running after {JOB_START_TIMEOUT_S}s: "
                    f"{log_tail(daemon.log_path(self.job_program))}"
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the job (it keeps its checkpoints), the pusher and the archive (they flush and commit first), and the
        monitor."""
        for program in (self.job_program, self.pusher_program, self.archive_program):
            self.services.daemon.stop(program)
        remove_targets(self.settings, "monitoring", self.pusher_program)
        if self.monitor is not None:
            self.monitor.stop()

    def kill_job(self) -> None:
        """SIGKILL the Flink job's process group, as a crash would (failure drills)."""
        import signal

        import psutil

        info = self.services.daemon.info(self.job_program)
        if not info or not info["pid"]:
            raise EmbeddedError(f"{self.job_program} is not running")
        process = psutil.Process(info["pid"])
        for child in [*process.children(recursive=True), process]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        psutil.wait_procs([process], timeout=30)

    # -- status ---------------------------------------------------------------------------------------------

    def job_state(self) -> str:
        """State of the job from the Flink REST API, or the process state when the API does not answer."""
        return flink_job_state(self.services.daemon, self.job_program, self.root / "rest_port")

    def status(self) -> StreamingStatus:
        end_events = self._end_offsets(self.topics["events"])
        end_features = self._end_offsets(self.topics["features"])
        return StreamingStatus(
            component=self.component.name,
            job_state=self.job_state(),
            events_in_topic=sum(end_events.values()),
            events_lag=self._lag(self.groups.job, self.topics["events"], end_events),
            features_lag=self._lag(self.groups.pusher, self.topics["features"], end_features),
            archive_lag=self._lag(self.groups.archive, self.topics["events"], end_events),
            dead_letters=sum(self._end_offsets(self.topics["dead_letter"]).values()),
        )

    def _end_offsets(self, topic: str) -> dict[int, int]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": "mlstack-status", "log_level": 3}
        )
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            return {
                p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in metadata.partitions
            }
        finally:
            consumer.close()

    def _lag(self, group: str, topic: str, end: dict[int, int]) -> int:
        """Records not yet committed by a consumer group (Flink commits on checkpoints)."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 3})
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in end])
        result = admin.list_consumer_group_offsets([request])[group].result(10)
        committed = {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}
        return sum(end[p] - committed.get(p, 0) for p in end)
