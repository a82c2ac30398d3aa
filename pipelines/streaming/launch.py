"""How a component's streaming pieces are started, written once for both modes.

The Flink job (``job.py``), the Feast pusher (``feature_pusher.py``) and the event archive (``event_archive.py``)
run as supervised processes in embedded mode (``local/streaming.py``) and as a ``FlinkDeployment`` plus two
Deployments on the cluster (``infra/use_cases/streaming.py``). Both build a ``StreamingLaunch`` from the component
and where Kafka, Feast and the job's state are, and take the programs' arguments from it; the Kafka consumer
groups that read a component's topics are named by ``ConsumerGroups`` only.

Standard library and ``contract`` only: the job imports ``ConsumerGroups`` inside the streaming environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the streaming job imports this module without the component's classes or a Kafka client
    from confluent_kafka import Consumer

    from contract import Component

JOB_MODULE = "pipelines.streaming.job"
PUSHER_MODULE = "pipelines.streaming.feature_pusher"
ARCHIVE_MODULE = "pipelines.streaming.event_archive"


@dataclass(frozen=True)
class ConsumerGroups:
    """The Kafka consumer groups reading a component's topics; each commits its own offsets, so each has a lag."""

    job: str
    """The Flink job, on the events topic (offsets committed on checkpoints)."""
    pusher: str
    """The Feast pusher, on the features topic."""
    archive: str
    """The event archive, on the events topic."""

    @classmethod
    def of(cls, component: str) -> ConsumerGroups:
        """The groups of the component named ``component``."""
        return cls(
            job=f"{component}-features",
            pusher=f"{component}-feast-pusher",
            archive=f"{component}-event-archive",
        )

    def all(self) -> tuple[str, ...]:
        """Every group, e.g. to forget all committed offsets on a reset."""
        return (self.job, self.pusher, self.archive)


@dataclass(frozen=True)
class StreamingLaunch:
    """Where one component's streaming programs run against, and the arguments each is started with.

    Optional settings are left off the command line when ``None``, so the program's default applies.
    """

    component: Component
    bootstrap: str
    """Kafka bootstrap servers."""
    spec: str
    """Path of the job spec (``StreamingSpec.to_json_dict``) as the job sees it."""
    checkpoints: str
    """Checkpoint URI of the job (``file://`` locally, ``s3://`` on the cluster)."""
    jars: tuple[str, ...]
    """Jar URIs the job puts on ``pipeline.jars`` (the Kafka SQL connector, the job's functions)."""
    parallelism: int
    feast_repo: str
    """The Feast repo folder (``feature_store.yaml``) the pusher opens."""
    offline_root: str
    """Where the feature history and the archived events are written."""
    rest_port: int | None = None
    """The job's REST port (embedded mode reads job state from it)."""
    checkpoint_interval_s: int | None = None
    flush_every_s: float | None = None
    """How often the pusher and the archive write their files and commit offsets."""
    stats: str | None = None
    """Where the pusher writes its counters and freshness."""
    metrics_port: int | None = None
    """Where the pusher serves its freshness histogram and stream series (``/metrics``) for Prometheus."""
    metrics_host: str | None = None
    """The address ``/metrics`` listens on (the pusher's default is loopback, which a cluster's Prometheus, scraping
    the pod's IP, cannot reach)."""

    @property
    def groups(self) -> ConsumerGroups:
        return ConsumerGroups.of(self.component.name)

    def job_args(self) -> list[str]:
        """Arguments of ``pipelines.streaming.job`` (after ``-m`` locally, after PythonDriver's ``-py`` on Flink)."""
        args = ["--spec", self.spec, "--bootstrap", self.bootstrap, "--checkpoints", self.checkpoints]
        args += ["--jars", ";".join(self.jars)]
        args += _optional("--rest-port", self.rest_port)
        args += ["--parallelism", str(self.parallelism)]
        args += _optional("--checkpoint-interval-s", self.checkpoint_interval_s)
        return args

    def pusher_args(self) -> list[str]:
        """Arguments of ``pipelines.streaming.feature_pusher``."""
        args = ["--component", self.component.name, "--bootstrap", self.bootstrap, "--repo", self.feast_repo]
        args += ["--offline-root", self.offline_root]
        args += [*_optional("--flush-every-s", self.flush_every_s), *_optional("--stats", self.stats)]
        return [*args, *_optional("--metrics-port", self.metrics_port), *_optional("--metrics-host", self.metrics_host)]

    def archive_args(self) -> list[str]:
        """Arguments of ``pipelines.streaming.event_archive``."""
        args = ["--component", self.component.name, "--bootstrap", self.bootstrap]
        args += ["--offline-root", self.offline_root]
        return [*args, *_optional("--flush-every-s", self.flush_every_s)]


def committing_consumer(bootstrap: str, group: str, topic: str) -> Consumer:
    """A consumer of ``topic`` in ``group`` that commits only when told: the pusher and the archive commit after
    the files holding what they read are written, so a crash replays instead of losing (main environment only)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def _optional(flag: str, value: object | None) -> list[str]:
    return [] if value is None else [flag, str(value)]
