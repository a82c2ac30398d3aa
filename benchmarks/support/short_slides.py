"""The fraud component with every window sliding each second, for the streaming benchmark's freshness part.

With fraud's own slides (one and five minutes) a run of a minute or two sees one window close or none, so its p99
rests on a single close. Here each group keeps its size/slide ratio (10 and 12 windows per event, as fraud's) with
1 s slides, so each group closes a window every second and a one-minute run sees 50+ closes per group. Group names
stay fraud's (``card_10m`` spans 10 s here). Registered only for the processes that need it (``register``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from contract import Component, Window
from contract.registry import ENTRY_POINT_GROUP, load

NAME = "fraud_1s"
SLIDE_S = 1


def short_slides(base: Component, name: str = NAME, slide_s: int = SLIDE_S) -> Component:
    """``base`` renamed, its windows scaled so that each slides every ``slide_s`` seconds."""
    groups = tuple(
        replace(g, window=Window(g.window.size_s // g.window.slide_s * slide_s, slide_s)) for g in base.streaming.groups
    )
    return replace(base, name=name, streaming=replace(base.streaming, groups=groups)).validate()


component = short_slides(load("fraud"))


def register(folder: Path) -> Path:
    """A distribution's metadata registering ``NAME`` under ``folder``: on a process's ``PYTHONPATH`` (the pusher's
    and the archive's, ``EmbeddedStreaming(python_path=...)``), ``contract.registry`` finds it there."""
    info = folder / "mlstack_bench_fraud_1s-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlstack-bench-fraud-1s\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{NAME} = {__name__}:component\n")
    return folder
