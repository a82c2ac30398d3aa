"""Fixtures the unit tier shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient


@pytest.fixture()
def registry(tmp_path: Path) -> MlflowClient:
    """A real MLflow registry (SQLite store): model ``fraud`` with versions 1-3, champion 1, challenger 2."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model("fraud")
    for _ in range(3):
        client.create_model_version("fraud", source=str(tmp_path))
    client.set_registered_model_alias("fraud", "champion", "1")
    client.set_registered_model_alias("fraud", "challenger", "2")
    return client
