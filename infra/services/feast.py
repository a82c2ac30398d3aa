"""Feast in the cluster: a SQL registry and offline store on Postgres, a Redis online store, the feature server.

Passwords are generated (``infra.services.passwords``), kept as secret outputs and handed to pods through a Secret; the
``feature_store.yaml`` in the ConfigMap names them as ``${VAR}``, which Feast expands from the environment, so no
password is ever in a ConfigMap, an argument or the program's source. Redis reads its ``requirepass`` from a config
file the Secret mounts (``redis-server <file> --dir ...``), so the password is not on its command line either (where
``ps`` and ``/proc/<pid>/cmdline`` would show it).
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra import versions
from infra.profiles import Sizing
from infra.services import objects, postgres
from infra.services.base import PlatformService, ServiceArgs, port_forward
from infra.services.passwords import GeneratedPassword

PROJECT = "mlstack"
SERVER_PORT = 6566
REDIS_PORT = 6379
SECRET = "feast-credentials"
REDIS_CONFIG_KEY = "redis.conf"  # the Secret's key holding Redis' auth config (``requirepass <password>``)
REDIS_CONFIG_DIR = "/etc/redis-auth"


def redis_auth_config(password: str) -> str:
    """Redis config lines that set the password (the generated ones are letters and digits: no quoting needed)."""
    return f"requirepass {password}\n"


def feature_store_yaml(namespace: str) -> str:
    db_host = f"feast-postgres.{namespace}.svc.cluster.local"
    return f"""project: {PROJECT}
provider: local
registry:
  registry_type: sql
  path: postgresql+psycopg://feast:${{FEAST_DB_PASSWORD}}@{db_host}:{postgres.PORT}/feast
  cache_ttl_seconds: 60
online_store:
  type: redis
  connection_string: feast-redis.{namespace}.svc.cluster.local:{REDIS_PORT},password=${{REDIS_PASSWORD}}
offline_store:
  type: postgres
  host: {db_host}
  port: {postgres.PORT}
  database: feast
  db_schema: public
  user: feast
  password: ${{FEAST_DB_PASSWORD}}
entity_key_serialization_version: 3
"""


def redis_deployment(namespace: str, workload: Sizing) -> dict[str, Any]:
    pod = {
        "automountServiceAccountToken": False,
        "securityContext": objects.pod_security(versions.REDIS_UID),
        "containers": [
            objects.container(
                "redis",
                versions.REDIS_IMAGE,
                workload,
                command=["redis-server"],
                # The first argument is a config file: the password comes from the Secret's file, not the command line.
                args=[f"{REDIS_CONFIG_DIR}/{REDIS_CONFIG_KEY}", "--dir", "/data", "--appendonly", "yes"],
                ports={"redis": REDIS_PORT},
                mounts=[
                    {"name": "data", "mountPath": "/data"},
                    {"name": "auth", "mountPath": REDIS_CONFIG_DIR, "readOnly": True},
                ],
                probe={"tcpSocket": {"port": REDIS_PORT}},
            )
        ],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {
                "name": "auth",
                # Readable by the pod's group only (fsGroup is Redis' uid): 0440.
                "secret": {
                    "secretName": SECRET,
                    "items": [{"key": REDIS_CONFIG_KEY, "path": REDIS_CONFIG_KEY}],
                    "defaultMode": 0o440,
                },
            },
        ],
    }
    return objects.deployment("feast-redis", namespace, objects.labels("feast-redis", "online-store"), pod)


def server_deployment(namespace: str, workload: Sizing) -> dict[str, Any]:
    pod = {
        "automountServiceAccountToken": False,
        "securityContext": objects.pod_security(versions.FEAST_UID),
        "containers": [
            objects.container(
                "feature-server",
                versions.FEAST_SERVER_IMAGE,
                workload,
                command=["feast", "--chdir", "/feast", "serve", "--host", "0.0.0.0"],
                args=["--port", str(SERVER_PORT)],
                env=[
                    objects.secret_env("FEAST_DB_PASSWORD", SECRET, "postgres-password"),
                    objects.secret_env("REDIS_PASSWORD", SECRET, "redis-password"),
                    {"name": "HOME", "value": "/tmp"},
                ],
                ports={"http": SERVER_PORT},
                mounts=[
                    {"name": "repo", "mountPath": "/feast", "readOnly": True},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
                probe={"httpGet": {"path": "/health", "port": SERVER_PORT}},
            )
        ],
        "volumes": [
            {"name": "repo", "configMap": {"name": "feast-repo"}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    labels = objects.labels("feast-server", "feature-server")
    return objects.deployment("feast-server", namespace, labels, pod, workload.replicas)


class FeatureStore(PlatformService):
    """Feast: Postgres (registry + offline store), Redis (online store), the feature server, NetworkPolicies."""

    kind = "FeatureStore"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        ns, p = args.namespace, args.profile
        child = pulumi.ResourceOptions(parent=self)
        self.db_password = GeneratedPassword(f"{name}-db-password", 32, opts=child)
        self.redis_password = GeneratedPassword(f"{name}-redis-password", 32, opts=child)
        self.credentials = self.register(
            "credentials",
            objects.secret(
                SECRET,
                ns,
                {
                    "postgres-password": self.db_password.result,
                    "redis-password": self.redis_password.result,
                    REDIS_CONFIG_KEY: pulumi.Output.secret(self.redis_password.result.apply(redis_auth_config)),
                },
            ),
        )
        db = postgres.statefulset("feast-postgres", ns, "feast", "feast", SECRET, p["feast.postgres"], p.storage_gi)
        db_labels = db["spec"]["selector"]["matchLabels"]
        self.database = self.register("postgres", db, depends_on=[self.credentials])
        self.register(
            "postgres-service", objects.service("feast-postgres", ns, db_labels, {"postgres": 5432}, headless=True)
        )
        redis = redis_deployment(ns, p["feast.redis"])
        redis_labels = redis["spec"]["selector"]["matchLabels"]
        self.redis = self.register("redis", redis, depends_on=[self.credentials])
        self.register("redis-service", objects.service("feast-redis", ns, redis_labels, {"redis": REDIS_PORT}))
        self.repo = self.register(
            "repo",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "feast-repo", "namespace": ns, "labels": dict(objects.PART_OF)},
                "data": {"feature_store.yaml": feature_store_yaml(ns)},
            },
        )
        server = server_deployment(ns, p["feast.server"])
        server_labels = server["spec"]["selector"]["matchLabels"]
        self.server = self.register("server", server, depends_on=[self.database, self.redis, self.repo])
        self.register("server-service", objects.service("feast-server", ns, server_labels, {"http": SERVER_PORT}))
        # Stores are reached only from inside the namespace (the server) and by the clients that read/write
        # features directly (the Flink pusher, the training pipeline, the model servers).
        self.register("deny", objects.default_deny(ns))
        self.register(
            "allow-postgres", objects.network_policy(ns, "allow-postgres", db_labels, [5432], list(args.clients))
        )
        self.register(
            "allow-redis", objects.network_policy(ns, "allow-redis", redis_labels, [REDIS_PORT], list(args.clients))
        )
        self.register(
            "allow-server",
            objects.network_policy(ns, "allow-server", server_labels, [SERVER_PORT], list(args.clients)),
        )
        self.done(
            {
                "server": f"http://feast-server.{ns}.svc.cluster.local:{SERVER_PORT}",
                "ui": port_forward(ns, "feast-server", SERVER_PORT, SERVER_PORT, "/health"),
                "registry": f"postgresql+psycopg://feast@feast-postgres.{ns}.svc.cluster.local:5432/feast",
                "online_store": f"feast-redis.{ns}.svc.cluster.local:{REDIS_PORT}",
                "version": versions.FEAST_VERSION,
            }
        )
