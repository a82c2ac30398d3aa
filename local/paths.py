"""Where the project keeps its environments, downloaded engines and runtime state."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
KAFKA_JARS = CACHE_DIR / "jars" / "kafka"
FLINK_JARS = CACHE_DIR / "jars" / "flink"
FLINK_UDF_JARS = CACHE_DIR / "jars" / "flink-udf"
FLINK_UDF_PROJECT = REPO_ROOT / "pipelines" / "streaming" / "udf"
MAIN_VENV = REPO_ROOT / ".venv"
STREAMING_VENV = REPO_ROOT / ".venv-streaming"


def state_dir() -> Path:
    """The folder holding data, logs and pid files of the embedded services (``MLSTACK_STATE_DIR``)."""
    return Path(os.environ.get("MLSTACK_STATE_DIR", REPO_ROOT / ".state")).resolve()


SOCKET_PATH_MAX = 97
"""The longest Unix socket path every user of one here takes (HAProxy's; the kernel's is 107 bytes)."""


def socket_path(path: Path) -> Path:
    """``path``, or a short stable name for it in the temp folder when a deep state folder makes it too long for a
    Unix socket."""
    if len(str(path)) <= SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mlstack-{digest}-{path.name}"


def venv_bin(venv: Path, name: str) -> Path:
    """An executable inside a virtual environment."""
    return venv / "bin" / name


def main_module(module: str, *args: str) -> tuple[str, ...]:
    """The command that runs ``python -m module args`` in the main environment (supervised workers, servers)."""
    return (str(venv_bin(MAIN_VENV, "python")), "-m", module, *args)
