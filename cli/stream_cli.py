"""``mlstack stream ...``: run a component's streaming features on the embedded services."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contract.registry import available, load
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming

console = Console()
app = typer.Typer(no_args_is_help=True, help="Streaming features: Kafka -> Flink -> Feast for a component.")
ComponentArg = Annotated[str, typer.Argument(help="Component name (see `mlstack stream components`).")]


def _streaming(name: str) -> EmbeddedStreaming:
    return EmbeddedStreaming(EmbeddedServices(EmbeddedSettings.from_env()), load(name))


@app.command("components")
def components() -> None:
    """List the components that can stream."""
    for name in available():
        console.print(f"{name}: {load(name).description}")


@app.command("start")
def start(component: ComponentArg) -> None:
    """Start the services if needed, then the component's Flink job and Feast pusher."""
    streaming = _streaming(component)
    streaming.services.up(progress=lambda line: console.print(f"  {line}"))
    streaming.start(progress=lambda line: console.print(f"  {line}"))
    console.print(f"streaming {component}: produce events with `mlstack stream produce {component}`")


@app.command("stop")
def stop(component: ComponentArg) -> None:
    """Stop the component's job (checkpoints are kept, so the next start resumes) and pusher."""
    _streaming(component).stop()
    console.print(f"stopped streaming for {component}")


@app.command("reset")
def reset(component: ComponentArg) -> None:
    """Stop and forget the component's stream: topics, consumer groups, checkpoints, features."""
    _streaming(component).reset(progress=lambda line: console.print(f"  {line}"))


@app.command("status")
def status(component: ComponentArg) -> None:
    """Job state, consumer lag and dead letters."""
    row = _streaming(component).status()
    table = Table(title=f"streaming {component}", title_justify="left")
    for column in (
        "Flink job",
        "events in topic",
        "events not yet checkpointed",
        "features not yet in Feast",
        "events not yet archived",
        "dead letters",
    ):
        table.add_column(column)
    table.add_row(
        row.job_state,
        str(row.events_in_topic),
        str(row.events_lag),
        str(row.features_lag),
        str(row.archive_lag),
        str(row.dead_letters),
    )
    console.print(table)


@app.command("produce")
def produce_events(
    component: ComponentArg,
    events: Annotated[int, typer.Option(help="How many synthetic events to generate.")] = 20_000,
    rate: Annotated[float, typer.Option(help="Events per second (0: as fast as possible).")] = 0,
    replay: Annotated[Path | None, typer.Option(help="Send a JSON-lines file instead of generated events.")] = None,
    hours_ago: Annotated[float, typer.Option(help="Event time of the first generated event.")] = 3.0,
    close_windows: Annotated[bool, typer.Option(help="End with watermark markers so every window closes.")] = True,
    seed: int = 0,
) -> None:
    """Send events to `<component>.events`."""
    from pipelines.streaming.producer import advance_watermark, produce
    from pipelines.streaming.producer import replay as replay_file

    streaming = _streaming(component)
    spec = streaming.component
    start_ms = int((time.time() - hours_ago * 3600) * 1000)
    source = replay_file(replay) if replay else spec.generate(events, start_ms, seed)
    began = time.monotonic()
    sent = produce(
        spec,
        streaming.settings.kafka_bootstrap,
        source,
        rate=rate or None,
        progress=lambda n: console.print(f"  sent {n} events"),
    )
    seconds = time.monotonic() - began
    console.print(f"sent {sent} events in {seconds:.1f}s ({sent / max(seconds, 1e-9):.0f}/s)")
    if close_windows:
        advance_watermark(spec, streaming.settings.kafka_bootstrap, int(time.time() * 1000))
        console.print("sent watermark markers: every window up to now will close")
