"""The MLflow tracking server and model registry: SQLite backend store, local artifact root, proxied artifacts."""

from __future__ import annotations

import urllib.error
import urllib.request

from local.paths import MAIN_VENV, venv_bin
from local.service_spec import ServiceSpec
from local.settings import EmbeddedSettings


def mlflow_ready(settings: EmbeddedSettings) -> bool:
    """True once the server's ``/health`` endpoint answers OK."""
    try:
        with urllib.request.urlopen(f"{settings.mlflow_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def mlflow_service(settings: EmbeddedSettings) -> ServiceSpec:
    """The tracking server as a supervised process."""
    root = settings.state_dir / "mlflow"

    def prepare() -> None:
        (root / "artifacts").mkdir(parents=True, exist_ok=True)

    command = (
        str(venv_bin(MAIN_VENV, "mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.mlflow_port),
        # One worker is plenty for one machine and keeps memory low.
        "--workers",
        "1",
    )
    return ServiceSpec(
        name="mlflow",
        command=command,
        ports=(settings.mlflow_port,),
        probe=lambda: mlflow_ready(settings),
        url=settings.mlflow_url,
        startup_timeout=180,
        prepare=prepare,
        # The GenAI job runner (a pool of huey workers, ~600 MiB) is not used by this stack.
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
