"""The training pipeline in embedded mode: its arguments point at the embedded services (MLflow) and at the
component's embedded feature store (the Feast repo and offline root the streaming job fills), and its local runs
keep their artifacts in the state folder.

Used by ``mlstack train run``, the demo, the local test tier and the training benchmark alike, so each runs the
pipeline on the same stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

from contract.registry import load
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from pipelines.training.runner import PipelineParams, RunOptions


def embedded_params(settings: EmbeddedSettings, component: str, **run: Unpack[RunOptions]) -> PipelineParams:
    """Pipeline arguments that point at the embedded services and the component's embedded feature store."""
    streaming = EmbeddedStreaming(EmbeddedServices(settings), load(component))
    return PipelineParams(
        component=component,
        mlflow_uri=settings.mlflow_url,
        feast_repo=str(streaming.repo),
        offline_root=streaming.feast_target.offline_root,
        **run,
    )


def pipeline_root(settings: EmbeddedSettings) -> Path:
    """Where the KFP local runner keeps the pipeline's runs and artifacts in embedded mode."""
    return settings.state_dir / "pipelines"
