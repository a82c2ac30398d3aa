"""Fixtures of the local tier that later stages build on: a component streamed once, then trained once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.train_cli import embedded_params
from contract.registry import load
from local.services import EmbeddedServices
from local.streaming import EmbeddedStreaming
from pipelines.streaming.producer import advance_watermark, produce
from pipelines.training.runner import PipelineParams, PipelineRun, run_local

FRAUD_EVENTS = 30_000  # ~75 minutes of event time: enough for three time splits with a few hundred frauds each


@dataclass
class Streamed:
    streaming: EmbeddedStreaming
    events: list[dict[str, Any]]


@dataclass
class Trained:
    params: PipelineParams
    run: PipelineRun
    pipeline_root: Path


def stream_component(services: EmbeddedServices, name: str, n_events: int) -> Streamed:
    """Reset the component's stream, stream ``n_events`` ending a few minutes ago, wait until all is in Feast."""
    component = load(name)
    streaming = EmbeddedStreaming(services, component, flush_every_s=1.0)
    streaming.reset(progress=print)
    streaming.start(progress=print)
    events = list(component.generate(n_events, int(time.time() * 1000) - 3 * 3600 * 1000, 7))
    # Generators differ in pace: shift the batch so that its last event is two minutes old.
    span_ms = events[-1]["event_time"] - events[0]["event_time"]
    shift = int(time.time() * 1000) - 120_000 - span_ms - events[0]["event_time"]
    for event in events:
        event["event_time"] += shift
    produce(component, services.settings.kafka_bootstrap, events)
    advance_watermark(component, services.settings.kafka_bootstrap, int(time.time() * 1000))
    deadline = time.monotonic() + 300
    while not (status := streaming.status()).caught_up:
        if time.monotonic() > deadline:
            pytest.fail(f"streaming of {name} did not catch up: {status}")
        time.sleep(1)
    return Streamed(streaming, events)


@pytest.fixture(scope="session")
def fraud_streamed(embedded: EmbeddedServices) -> Iterator[Streamed]:
    streamed = stream_component(embedded, "fraud", FRAUD_EVENTS)
    yield streamed
    streamed.streaming.stop()


@pytest.fixture(scope="session")
def fraud_trained(embedded: EmbeddedServices, fraud_streamed: Streamed) -> Trained:
    """The fraud pipeline run once through the KFP local runner; the first version becomes the challenger."""
    params = embedded_params(embedded.settings, "fraud", trials=6, concurrency=2)
    root = embedded.settings.state_dir / "pipelines"
    return Trained(params, run_local(params, root, progress=print), root)
