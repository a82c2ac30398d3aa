"""The closed loop's times (issue 19 item 5): from the world's change to the alert, the retraining run, the registered
challenger and its promotion, and the live metric before and after, per run of ``mlstack demo --drift`` with the
drill's times (``local.loop_drill``); beside each, its peer, a control run of the same drill on a world without
change, run at the same time on a service set of its own (what it raised and started must be nothing).

Run: PYTHONPATH=. .venv/bin/python benchmarks/closed_loop.py [--seeds 12,13] [--component fraud]
(about half an hour per seed on a two-core machine; its own state folders and free ports; stops everything at the
end).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cli.demo_loop import DRILL_WATCHED_S, control_arguments, drill_options, run_loop_demo
from local.paths import REPO_ROOT
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings


def _control(settings: EmbeddedSettings, component: str, seed: int) -> subprocess.Popen[bytes]:
    """The peer: the same drill on a world that does not change, as a person runs it (the CLI)."""
    log = (settings.state_dir.parent / "control.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", *control_arguments(component, seed)],
        cwd=REPO_ROOT,
        env={**os.environ, **settings.environment()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _run(console: Console, folder: Path, component: str, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    loop_settings = EmbeddedSettings.on_free_ports(folder / "loop" / "state")
    control_settings = EmbeddedSettings.on_free_ports(folder / "control" / "state")
    control_settings.state_dir.mkdir(parents=True, exist_ok=True)
    control = _control(control_settings, component, seed + 1000)
    options = drill_options(component, seed)
    try:
        result = run_loop_demo(options, progress=lambda line: console.print(f"  {line}", highlight=False),
                               settings=loop_settings)  # fmt: skip
        control.wait(timeout=DRILL_WATCHED_S + 900)
        summary = json.loads((control_settings.state_dir / "reports" / f"{component}-demo.json").read_text())
    finally:
        if control.poll() is None:
            control.kill()
        EmbeddedServices(loop_settings).down(progress=lambda line: None)
        EmbeddedServices(control_settings).down(progress=lambda line: None)
    return result.loop, summary.get("loop", {})


def _minutes(loop: dict[str, Any], kind: str) -> str:
    value = loop.get("minutes_from_change", {}).get(kind)
    return "-" if value is None else f"{value:.1f}"


def _metric(loop: dict[str, Any], key: str) -> str:
    value = loop.get(key, math.nan)
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--component", default="fraud")
    parser.add_argument("--seeds", default="12", help="Comma-separated seeds of the loop runs (the control: +1000).")
    args = parser.parse_args()
    console = Console()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        console.print(f"== seed {seed}: the loop, and beside it the control (seed {seed + 1000})")
        with tempfile.TemporaryDirectory(prefix="mlstack-loop-bench-") as folder:
            rows.append((seed, *_run(console, Path(folder), args.component, seed)))
    table = Table(title=f"the closed loop of {args.component}: minutes from the change, live metric, and the control")
    for column in ("seed", "order", "alert", "retraining", "registered", "promoted"):
        table.add_column(column)
    for column in ("champion before", "champion worst after", "promoted at end", "control: alerts / runs"):
        table.add_column(column)
    for seed, loop, control in rows:
        table.add_row(
            str(seed),
            " -> ".join(loop.get("order", [])) or "none",
            *(_minutes(loop, kind) for kind in ("alert", "retraining", "registered", "promoted")),
            _metric(loop, "champion_before"),
            _metric(loop, "champion_after_worst"),
            _metric(loop, "promoted_at_end"),
            f"{control.get('alerts', '?')} / {control.get('runs', '?')} in {control.get('watched_s', 0) / 60:.0f} min",
        )
    console.print(table)


if __name__ == "__main__":
    main()
