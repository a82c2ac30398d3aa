"""A single-node Kafka broker in KRaft mode (broker and controller in one JVM), from the Maven Central jars."""

from __future__ import annotations

import subprocess
from pathlib import Path

from local.errors import EmbeddedError
from local.java_runtime import java_executable
from local.paths import KAFKA_JARS
from local.service_spec import ServiceSpec, port_open
from local.settings import EmbeddedSettings

NODE_ID = 1
HEAP = ("-Xms256m", "-Xmx768m")

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""


def server_properties(settings: EmbeddedSettings, data_dir: Path) -> str:
    """The broker's configuration: one node, PLAINTEXT + CONTROLLER listeners, replication factor 1."""
    client, controller = settings.kafka_port, settings.kafka_controller_port
    return f"""\
process.roles=broker,controller
node.id={NODE_ID}
controller.quorum.voters={NODE_ID}@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{client}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Topics are created on purpose by the streaming layer; a typo must not create one silently.
auto.create.topics.enable=false
log.retention.hours=168
"""


class KafkaStorage:
    """The broker's config and log folder under the state folder; formatted once, checked on every start."""

    def __init__(self, settings: EmbeddedSettings) -> None:
        self.settings = settings
        self.root = settings.state_dir / "kafka"
        self.data_dir = self.root / "data"
        self.config = self.root / "server.properties"
        self.log4j = self.root / "log4j2.properties"

    def classpath(self) -> str:
        if not KAFKA_JARS.is_dir() or not any(KAFKA_JARS.glob("kafka_2.13-*.jar")):
            raise EmbeddedError(f"Kafka jars are missing from {KAFKA_JARS}: run `make setup`")
        return f"{KAFKA_JARS}/*"

    def prepare(self) -> None:
        """Write the config (ports may have changed) and format the storage on first start."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(server_properties(self.settings, self.data_dir))
        self.log4j.write_text(LOG4J2)
        meta = self.data_dir / "meta.properties"
        if meta.exists():
            self._check_meta(meta)
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedError(
                f"Kafka state in {self.data_dir} has data but no meta.properties (a corrupt or foreign folder): "
                "run `make services-reset` to wipe the embedded state"
            )
        self._format()

    def _check_meta(self, meta: Path) -> None:
        try:
            entries = dict(
                line.split("=", 1) for line in meta.read_text().splitlines() if line and not line.startswith("#")
            )
        except (UnicodeDecodeError, ValueError):
            entries = {}
        if entries.get("node.id") != str(NODE_ID) or not entries.get("cluster.id"):
            raise EmbeddedError(
                f"Kafka state in {self.data_dir} is corrupt (meta.properties has no valid cluster.id/node.id): "
                "run `make services-reset` to wipe the embedded state"
            )

    def _format(self) -> None:
        java = java_executable()
        cp = self.classpath()
        tool = [java, "-cp", cp, f"-Dlog4j2.configurationFile={self.log4j}", "kafka.tools.StorageTool"]
        cluster_id = _run([*tool, "random-uuid"]).strip().splitlines()[-1]
        _run([*tool, "format", "-t", cluster_id, "-c", str(self.config)])


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EmbeddedError(f"Kafka storage tool failed ({argv[-2]}): {detail[0]}")
    return result.stdout


def kafka_ready(settings: EmbeddedSettings) -> bool:
    """True once the broker answers a metadata request and lists itself."""
    if not port_open(settings.kafka_port):
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:
        return False
    return bool(metadata.brokers)


def kafka_service(settings: EmbeddedSettings) -> ServiceSpec:
    """The broker as a supervised process."""
    storage = KafkaStorage(settings)
    command = (
        java_executable(),
        *HEAP,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={storage.log4j}",
        "-cp",
        storage.classpath(),
        "kafka.Kafka",
        str(storage.config),
    )
    return ServiceSpec(
        name="kafka",
        command=command,
        ports=(settings.kafka_port, settings.kafka_controller_port),
        probe=lambda: kafka_ready(settings),
        url=f"kafka://{settings.kafka_bootstrap}",
        startup_timeout=90,
        prepare=storage.prepare,
    )
