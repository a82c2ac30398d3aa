"""Measure: `make setup` (from its last report), time from `services up` to all-healthy, and the services'
peak memory, cold (fresh state folder) and warm (state already formatted). Prints a table; asserts nothing.

Run with `make bench` or `.venv/bin/python benchmarks/services_startup.py`.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from local.paths import CACHE_DIR
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings


def _measure(services: EmbeddedServices, settle_s: float = 10.0) -> tuple[float, float]:
    """Seconds from `up` to all-healthy, and peak total RSS (MiB) sampled until `settle_s` after healthy."""
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(row.rss_mb for row in services.status()))
            time.sleep(0.5)

    began = time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    services.up(progress=lambda _line: None)
    healthy = time.monotonic() - began
    time.sleep(settle_s)
    done.set()
    sampler.join()
    return healthy, peak


def main() -> None:
    console = Console(width=120)
    report_path = CACHE_DIR / "setup-report.json"
    if report_path.exists():
        setup = Table(title="make setup (recent runs on this machine: the first is cold)", title_justify="left")
        for column in ("when", "total s", "steps (outcome, s)", "disk MiB"):
            setup.add_column(column)
        for run in json.loads(report_path.read_text()):
            steps = "; ".join(f"{s['step'].split(' (')[0]}: {s['outcome']} {s['seconds']:.1f}" for s in run["steps"])
            setup.add_row(run["at"], f"{run['seconds']:.1f}", steps, str(sum(run["disk_mib"].values())))
        console.print(setup)

    table = Table(title="embedded services: up -> all healthy", title_justify="left")
    for column in ("run", "seconds to healthy", "peak RSS (MiB)"):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as state:
        settings = EmbeddedSettings.on_free_ports(Path(state))
        services = EmbeddedServices(settings)
        try:
            for run in ("cold (empty state)", "warm (state exists)"):
                seconds, peak = _measure(services)
                table.add_row(run, f"{seconds:.1f}", f"{peak:.0f}")
                services.down(progress=lambda _line: None)
        finally:
            services.down(progress=lambda _line: None)
    console.print(table)


if __name__ == "__main__":
    main()
