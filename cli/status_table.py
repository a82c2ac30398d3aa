"""The status table a person reads at a glance."""

from __future__ import annotations

from rich.table import Table

from local.services import ServiceStatus


def status_table(rows: list[ServiceStatus], title: str = "embedded services") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("service", "state", "health", "pid", "uptime", "memory", "address", "log"):
        table.add_column(column)
    for row in rows:
        health = "[green]healthy[/]" if row.healthy else ("[red]unhealthy[/]" if row.pid else "[dim]-[/]")
        table.add_row(
            row.name,
            row.state,
            health,
            str(row.pid or "-"),
            f"{row.uptime_s:.0f}s" if row.pid else "-",
            f"{row.rss_mb:.0f} MiB" if row.pid else "-",
            row.url or "-",
            str(row.log),
        )
    total = sum(row.rss_mb for row in rows)
    table.caption = f"total resident memory {total:.0f} MiB"
    return table
