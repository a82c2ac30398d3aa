"""Fixtures of the local tier that later stages build on: a component streamed once, then trained once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.errors import EmbeddedError
from local.services import EmbeddedServices
from local.synthetic_stream import Streamed, stream_backlog
from local.training import embedded_params, pipeline_root
from pipelines.training.runner import PipelineParams, PipelineRun, run_local

FRAUD_EVENTS = 30_000  # ~37 minutes of event time (half the events are resolutions): ~11,000 labelled transactions


@dataclass
class Trained:
    params: PipelineParams
    run: PipelineRun
    pipeline_root: Path


def stream_component(services: EmbeddedServices, name: str, n_events: int) -> Streamed:
    """``local.synthetic_stream.stream_backlog``, whose time-out fails the test rather than erring in it."""
    try:
        return stream_backlog(services, name, n_events, progress=print)
    except EmbeddedError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def fraud_streamed(embedded: EmbeddedServices) -> Iterator[Streamed]:
    streamed = stream_component(embedded, "fraud", FRAUD_EVENTS)
    yield streamed
    streamed.streaming.stop()


@pytest.fixture(scope="session")
def fraud_trained(embedded: EmbeddedServices, fraud_streamed: Streamed) -> Trained:
    """The fraud pipeline run once through the KFP local runner; its version becomes champion when fraud has none
    (else challenger, when better than the champion)."""
    params = embedded_params(embedded.settings, "fraud", trials=6, concurrency=2)
    root = pipeline_root(embedded.settings)
    return Trained(params, run_local(params, root, progress=print), root)
