"""Kafka through Strimzi: the operator chart, then one KRaft cluster on a dual-role (controller + broker) node pool.

Strimzi's ``v1`` API (0.49+) runs KRaft with node pools and no ZooKeeper. The listener's ``networkPolicyPeers``
make Strimzi's own NetworkPolicy admit only the namespaces that produce or consume events.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import versions
from infra.services.base import PlatformService, ServiceArgs

CLUSTER_NAME = "mlstack"
API_VERSION = "kafka.strimzi.io/v1"
WAIT_FOR = "pulumi.com/waitFor"  # pulumi-kubernetes' readiness annotation for custom resources


def node_pool(namespace: str, args: ServiceArgs) -> dict[str, Any]:
    node = args.profile["kafka.node"]
    heap = f"{max(256, node.memory // 2)}m"
    return {
        "apiVersion": API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": {"name": "dual-role", "namespace": namespace, "labels": {"strimzi.io/cluster": CLUSTER_NAME}},
        "spec": {
            "replicas": node.replicas,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": f"{args.profile.storage_gi}Gi",
                        "deleteClaim": True,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": node.resources(),
            "jvmOptions": {"-Xms": heap, "-Xmx": heap},
        },
    }


def kafka_cluster(namespace: str, args: ServiceArgs) -> dict[str, Any]:
    replication = args.profile.kafka_replication
    peers = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": client}}}
        for client in sorted({namespace, *args.clients})
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": "Kafka",
        # Pulumi waits for the operator to report the cluster Ready before dependents (topics) are created.
        "metadata": {"name": CLUSTER_NAME, "namespace": namespace, "annotations": {WAIT_FOR: "condition=Ready"}},
        "spec": {
            "kafka": {
                "version": versions.KAFKA_VERSION,
                "listeners": [
                    {"name": "plain", "port": 9092, "type": "internal", "tls": False, "networkPolicyPeers": peers},
                    {"name": "tls", "port": 9093, "type": "internal", "tls": True, "networkPolicyPeers": peers},
                ],
                "config": {
                    "offsets.topic.replication.factor": replication,
                    "transaction.state.log.replication.factor": replication,
                    "transaction.state.log.min.isr": min(replication, 2),
                    "default.replication.factor": replication,
                    "min.insync.replicas": min(replication, 2),
                    "auto.create.topics.enable": False,
                },
            },
            "entityOperator": {
                "topicOperator": {"resources": args.profile["kafka.topic-operator"].resources()},
                "userOperator": {"resources": args.profile["kafka.user-operator"].resources()},
            },
        },
    }


class Kafka(PlatformService):
    """The Strimzi operator and a KRaft Kafka cluster; topics come per component (``KafkaTopic``)."""

    kind = "Kafka"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        operator = args.profile["kafka.operator"]
        self.operator = self.chart(
            "operator",
            versions.STRIMZI,
            {"replicas": operator.replicas, "resources": operator.resources(), "watchAnyNamespace": False},
        )
        # Custom resources after the operator: its chart installs the CRDs and the controller that reconciles them.
        self.node_pool = self.register("node-pool", node_pool(args.namespace, args), depends_on=[self.operator])
        self.cluster = self.register(
            "cluster", kafka_cluster(args.namespace, args), depends_on=[self.operator, self.node_pool]
        )
        self.done(
            {
                "bootstrap": f"{CLUSTER_NAME}-kafka-bootstrap.{args.namespace}.svc.cluster.local:9092",
                "version": versions.KAFKA_VERSION,
                "operator_version": versions.STRIMZI.version,
            }
        )
