"""``make demo``: the lifecycle on the embedded default, as far as it is built: services, then a component's
events streamed through Kafka and Flink into Feast, with a look at the features that arrived online."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contract import Component
from contract.registry import load
from embedded.errors import EmbeddedError
from embedded.services import EmbeddedServices
from embedded.settings import EmbeddedSettings
from embedded.streaming import EmbeddedStreaming, StreamingStatus
from pipelines.streaming.producer import advance_watermark, produce

Progress = Callable[[str], None]


@dataclass
class DemoResult:
    component: str
    phases: dict[str, float] = field(default_factory=dict)
    events_sent: int = 0
    produce_rate: float = 0.0
    status: StreamingStatus | None = None
    online_sample: list[dict[str, Any]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)


def _wait_caught_up(streaming: EmbeddedStreaming, timeout_s: float, progress: Progress) -> StreamingStatus:
    began = time.monotonic()
    last = ""
    while True:
        status = streaming.status()
        line = (
            f"events not yet checkpointed {status.events_lag}, features not yet in Feast {status.features_lag}, "
            f"events not yet archived {status.archive_lag}"
        )
        if line != last:
            progress(line)
            last = line
        if status.caught_up:
            return status
        if time.monotonic() - began > timeout_s:
            raise EmbeddedError(f"streaming did not catch up within {timeout_s:.0f}s: {line}")
        time.sleep(1)


def run_demo(component_name: str, events: int, progress: Progress) -> DemoResult:
    """Run the demo; leaves the services and the streaming job running for the user to explore."""
    component: Component = load(component_name)
    settings = EmbeddedSettings.from_env()
    services = EmbeddedServices(settings)
    result = DemoResult(component=component.name)

    began = time.monotonic()
    progress("[1/4] starting the embedded services (Kafka, Redis, MLflow)")
    services.up(progress=lambda line: progress(f"      {line}"))
    result.phases["services up"] = time.monotonic() - began

    began = time.monotonic()
    progress(f"[2/4] starting the streaming job of {component.name} (Flink mini-cluster + Feast pusher)")
    streaming = EmbeddedStreaming(services, component, flush_every_s=2.0)
    # Each demo streams the same three hours of event time, so the previous demo's stream is replaced:
    # its watermark would make these events late.
    streaming.reset(progress=lambda line: progress(f"      {line}"))
    streaming.start(progress=lambda line: progress(f"      {line}"))
    result.phases["streaming job start"] = time.monotonic() - began

    began = time.monotonic()
    progress(f"[3/4] producing {events} synthetic {component.name} events into {component.name}.events")
    start_ms = int((time.time() - 3 * 3600) * 1000)
    generated = list(component.generate(events, start_ms, int(time.time())))
    result.events_sent = produce(
        component,
        settings.kafka_bootstrap,
        generated,
        progress=lambda n: progress(f"      sent {n}/{events}"),
    )
    advance_watermark(component, settings.kafka_bootstrap, int(time.time() * 1000))
    result.phases["produce"] = time.monotonic() - began
    result.produce_rate = result.events_sent / max(result.phases["produce"], 1e-9)

    began = time.monotonic()
    progress("[4/4] waiting for Flink to process them and for the features to reach Feast")
    result.status = _wait_caught_up(streaming, 300, lambda line: progress(f"      {line}"))
    result.phases["features online"] = time.monotonic() - began

    group = component.streaming.groups[0]
    entities = list(dict.fromkeys(e[group.entity] for e in reversed(generated)))[:5]
    store = streaming.feature_store()
    online = store.get_online_features(
        features=[
            f"{g.name}:{f}"
            for g in component.streaming.groups
            if g.entity == group.entity
            for f in g.feature_names()[:2]
        ],
        entity_rows=[{group.entity: e} for e in entities],
        full_feature_names=True,
    ).to_dict()
    result.online_sample = [{k: v[i] for k, v in online.items()} for i in range(len(entities))]
    result.urls = {
        "MLflow UI": settings.mlflow_url,
        "Flink web UI": f"http://127.0.0.1:{streaming.rest_port()}",
        "Kafka": settings.kafka_bootstrap,
        "Feast repo": str(streaming.repo),
    }
    return result
