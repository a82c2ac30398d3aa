"""MLflow: the project's own chart (``charts/mlflow``): tracking server, Postgres backend store, S3-compatible
artifact store. The program generates the database password and the S3 key pair and hands them to the chart as a
Secret; the chart's values carry only sizes, names and the Secret's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.profiles import Profile
from infra.services import objects
from infra.services.base import PlatformService, ServiceArgs, port_forward
from infra.services.passwords import GeneratedPassword

RELEASE = "mlflow"
SECRET = "mlflow-credentials"
PORT = 5000
CHART = Path(__file__).resolve().parents[2] / versions.MLFLOW_CHART_PATH
#: Buckets the chart creates beside MLflow's own: every component's offline feature history, and the Flink jobs'
#: checkpoints and HA metadata (object storage, which any TaskManager on any node can reach).
FEATURES_BUCKET = "mlstack-features"
FLINK_BUCKET = "mlstack-flink"


def s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS's S3 identity file: one identity, read/write on every bucket."""
    identity = {
        "name": "mlflow",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    return json.dumps({"identities": [identity]})


def chart_values(profile: Profile, clients: list[str]) -> dict[str, Any]:
    """Values for ``charts/mlflow`` from the profile (everything else stays at the chart's pinned defaults)."""
    server = profile["mlflow.server"]
    return {
        "credentialsSecret": SECRET,
        "server": {"replicas": server.replicas, "resources": server.resources()},
        "postgres": {"resources": profile["mlflow.postgres"].resources(), "storage": f"{profile.storage_gi}Gi"},
        "s3": {
            "resources": profile["mlflow.s3"].resources(),
            "storage": f"{profile.storage_gi}Gi",
            "extraBuckets": [FEATURES_BUCKET, FLINK_BUCKET],
        },
        "networkPolicy": {"enabled": True, "clientNamespaces": sorted(clients)},
    }


class Mlflow(PlatformService):
    """The MLflow chart with generated credentials."""

    kind = "Mlflow"

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, args, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.db_password = GeneratedPassword(f"{name}-db-password", 32, opts=child)
        self.s3_access_key = GeneratedPassword(f"{name}-s3-access-key", 20, opts=child)
        self.s3_secret_key = GeneratedPassword(f"{name}-s3-secret-key", 40, opts=child)
        identities = pulumi.Output.all(self.s3_access_key.result, self.s3_secret_key.result).apply(
            lambda keys: s3_identities(str(keys[0]), str(keys[1]))
        )
        self.credentials = self.register(
            "credentials",
            objects.secret(
                SECRET,
                args.namespace,
                {
                    "postgres-password": self.db_password.result,
                    "s3-access-key": self.s3_access_key.result,
                    "s3-secret-key": self.s3_secret_key.result,
                    "s3-config.json": pulumi.Output.secret(identities),
                },
            ),
        )
        self.release = k8s.helm.v4.Chart(
            f"{name}-chart",
            k8s.helm.v4.ChartArgs(
                chart=str(CHART),
                name=RELEASE,
                namespace=args.namespace,
                values=chart_values(args.profile, list(args.clients)),
            ),
            opts=self.options([self.credentials]),
        )
        self.done(
            {
                "tracking_uri": f"http://{RELEASE}.{args.namespace}.svc.cluster.local:{PORT}",
                "ui": port_forward(args.namespace, RELEASE, PORT, PORT),
                "chart": str(versions.MLFLOW_CHART_PATH),
            }
        )
