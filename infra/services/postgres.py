"""A single-instance PostgreSQL StatefulSet of the project's own (Feast's registry and offline store)."""

from __future__ import annotations

from typing import Any

from infra import versions
from infra.profiles import Sizing
from infra.services import objects

PORT = 5432


def statefulset(
    name: str, namespace: str, database: str, user: str, secret: str, workload: Sizing, storage_gi: int
) -> dict[str, Any]:
    """Postgres with the password from ``secret`` (key ``postgres-password``), data on a PVC."""
    selector = objects.labels(name, "database")
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "labels": selector},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": objects.pod_security(versions.POSTGRES_UID),
                    "containers": [
                        objects.container(
                            "postgres",
                            versions.POSTGRES_IMAGE,
                            workload,
                            env=[
                                {"name": "POSTGRES_DB", "value": database},
                                {"name": "POSTGRES_USER", "value": user},
                                objects.secret_env("POSTGRES_PASSWORD", secret, "postgres-password"),
                                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                            ],
                            ports={"postgres": PORT},
                            mounts=[
                                {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                {"name": "run", "mountPath": "/var/run/postgresql"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                            probe={"exec": {"command": ["pg_isready", "-U", user, "-d", database]}},
                        )
                    ],
                    "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": f"{storage_gi}Gi"}},
                    },
                }
            ],
        },
    }
