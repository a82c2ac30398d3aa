"""Measure the real Pulumi engine: toolchain build cold and warm (from `make tools` runs), then one render cycle of
the kind stack (preview, render with `pulumi up`, idempotent second up, destroy) and the rendered objects per kind.
Prints tables; asserts nothing (the render tier does).

Run with `make bench` or `.venv/bin/python benchmarks/pulumi_render.py` after `make tools`.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from embedded.pulumi_toolchain import REPORT_FILE, ensure, locate
from tests.render.render_stack import run_cycle


def toolchain_table(console: Console) -> None:
    history = json.loads(REPORT_FILE.read_text()) if REPORT_FILE.exists() else []
    table = Table(title="Pulumi toolchain (`make tools` runs, newest last; 'built' = cold or rebuilt, else warm)")
    for column in ("at", "total s", "CLI", "provider", "plugin install"):
        table.add_column(column)
    for run in history:
        steps = {s["name"]: s for s in run["steps"]}

        def cell(name: str, steps: dict[str, dict[str, object]] = steps) -> str:
            step = steps.get(name)
            return f"{step['seconds']}s {str(step['outcome']).split(':')[0]}" if step else "-"

        table.add_row(
            run["at"], str(run["seconds"]), cell("pulumi CLI"), cell("kubernetes provider"), cell("plugin install")
        )
    console.print(table)


def main() -> None:
    console = Console()
    found = locate()
    if isinstance(found, str):
        console.print(f"pulumi_render: {found}")
        return
    started = time.monotonic()
    ensure(progress=lambda _line: None)  # a warm (no-op) run, so the history shows one
    console.print(f"warm `make tools` (stamps only): {time.monotonic() - started:.1f}s")
    toolchain_table(console)
    with tempfile.TemporaryDirectory(prefix="mlstack-render-bench-") as work:
        report = run_cycle(found, Path(work), log=lambda _line: None)
    table = Table(title=f"Render cycle: {report.program}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("changes")
    table.add_row("preview", str(report.preview_seconds), str(report.preview_changes))
    table.add_row("up (render)", str(report.up_seconds), str(report.up_changes))
    table.add_row("second up", str(report.second_up_seconds), str(report.second_up_changes))
    table.add_row("destroy", str(report.destroy_seconds), str(report.destroy_changes))
    console.print(table)
    total = sum(report.kinds.values())
    kinds = Table(title=f"Rendered objects per kind ({total} in {len(report.rendered_files)} files)")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    for kind, count in report.kinds.items():
        kinds.add_row(kind, str(count))
    console.print(kinds)
    console.print("left out by render mode: " + ("; ".join(report.left_out) or "nothing"))


if __name__ == "__main__":
    main()
