"""How long `make demo` takes from installed environments to its summary, phase by phase, against the goal of
five minutes on a 2-core machine; the second run shows what reusing an earlier demo's leftovers saves.

Run: PYTHONPATH=. .venv/bin/python benchmarks/demo_phases.py [--component fraud|demand]
(its own state folder and free ports; stops everything at the end).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.demo import DemoOptions, run_demo
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings

GOAL_S = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--component", default="fraud")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="mlstack-demo-bench-") as folder:
        settings = EmbeddedSettings.on_free_ports(Path(folder))
        runs = {}
        try:
            for label in ("first run", "second run (leftovers)"):
                console.print(f"== {label}")
                result = run_demo(
                    DemoOptions(component=args.component, seed=7),
                    progress=lambda line: console.print(f"  {line}", highlight=False),
                    settings=settings,
                )
                runs[label] = result
        finally:
            EmbeddedServices(settings).down(progress=lambda line: console.print(f"  {line}"))
    phases = list(dict.fromkeys(p for r in runs.values() for p in r.phases))
    table = Table(title=f"make demo COMPONENT={args.component}: seconds per phase (goal: total under {GOAL_S:.0f} s)")
    table.add_column("phase")
    for label in runs:
        table.add_column(label, justify="right")
    for phase in phases:
        table.add_row(phase, *(f"{r.phases[phase]:.1f}" if phase in r.phases else "-" for r in runs.values()))
    totals = [sum(r.phases.values()) for r in runs.values()]
    table.add_row("total", *(f"{t:.1f}" for t in totals))
    table.add_row("share of the goal", *(f"{t / GOAL_S:.0%}" for t in totals))
    table.add_row("canary verdict", *(r.verdict for r in runs.values()))
    console.print(table)


if __name__ == "__main__":
    main()
