"""Measure the real Pulumi engine: the toolchain build per part, cold (the newest recorded build) and warm (a no-op
`make tools` run now), then one render cycle of the kind stack with its use-case components (preview, render with
`pulumi up`, an idempotent second up, destroy) and the rendered objects per kind. Prints tables; asserts nothing (the
render tier does).

Run with `make bench` or `.venv/bin/python benchmarks/pulumi_render.py` after `make tools`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from devtools.go_build import ToolchainError
from devtools.pulumi_builds import PROVIDER_VERSION
from devtools.pulumi_toolchain import ensure, locate
from devtools.toolchain_report import read_report
from tests.render.render_stack import run_cycle

PARTS = ("pulumi CLI", "kubernetes provider", "plugin install")


def _cold(build: dict[str, Any] | None) -> tuple[str, str, str]:
    """(seconds, when, what Go compiled) of a part's newest recorded build."""
    if build is None:
        return "not recorded", "-", "-"
    compiled = build.get("packages_compiled")
    detail = "-" if compiled is None else f"{compiled} packages, {build.get('modules_downloaded', 0)} modules fetched"
    return f"{build['seconds']:.1f}", str(build["at"]), detail


def toolchain_table(console: Console, warm_run: dict[str, Any]) -> None:
    report = read_report()
    warm_runs = [r for r in report["runs"] if r.get("outcome", "ok") == "ok"]
    table = Table(title="Pulumi toolchain build per part (s)")
    for column in ("part", "cold / newest build", "built at", "Go compiled", "warm now", "warm median"):
        table.add_column(column, justify="right" if column.startswith(("cold", "warm")) else "left")
    now = {step["name"]: step for step in warm_run["steps"]}
    for part in PARTS:
        seconds, at, detail = _cold(report["builds"].get(part))
        history = [s["seconds"] for r in warm_runs for s in r["steps"] if s["name"] == part and not s.get("built")]
        median = f"{statistics.median(history):.1f} (n={len(history)})" if history else "-"
        table.add_row(part, seconds, at, detail, f"{now[part]['seconds']:.1f}" if part in now else "-", median)
    console.print(table)
    console.print(f"warm `make tools` total (stamps only): {warm_run['seconds']:.1f}s")
    failures = report["failures"]
    if failures:
        newest = failures[-1]
        console.print(
            f"failed builds recorded: {len(failures)}; newest {newest['at']}: {newest['error'].splitlines()[0]}"
        )
    else:
        console.print("failed builds recorded: 0")


def main() -> int:
    console = Console()
    try:
        found = locate()
    except ToolchainError as error:
        console.print(f"pulumi_render: {error}")
        return 1
    if isinstance(found, str):
        console.print(f"pulumi_render: skipped: {found}")
        return 0
    ensure(progress=lambda _line: None)  # a warm (no-op) run, recorded like any other
    toolchain_table(console, read_report()["runs"][-1])
    console.print(
        f"kubernetes provider used: {found.provider_version} (built from {PROVIDER_VERSION}); the pulumi-kubernetes "
        f"wheel asks for {found.wanted_provider_version}, which the Go module proxy refuses (403)"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlstack-render-bench-") as work:
        report = run_cycle(found, Path(work), log=lambda _line: None)
    cycle = time.monotonic() - started
    table = Table(title=f"Render cycle of the kind stack ({report.program}; {report.config}), {cycle:.0f}s in all")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    table.add_column("changes")
    table.add_row("preview", f"{report.preview_seconds:.1f}", str(report.preview_changes))
    table.add_row("up (render)", f"{report.up_seconds:.1f}", str(report.up_changes))
    table.add_row("second up (no changes)", f"{report.second_up_seconds:.1f}", str(report.second_up_changes))
    table.add_row("destroy", f"{report.destroy_seconds:.1f}", str(report.destroy_changes))
    console.print(table)
    total = sum(report.kinds.values())
    kinds = Table(title=f"Rendered objects per kind ({total} in {len(report.rendered_files)} files)")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    for kind, count in report.kinds.items():
        kinds.add_row(kind, str(count))
    console.print(kinds)
    console.print(f"left out by render mode ({len(report.left_out or [])}): " + "; ".join(report.left_out or []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
