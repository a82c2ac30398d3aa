"""What the Go builds did and how long they took: ``report.json`` (read by benchmarks/pulumi_render.py) and the logs.

A report keeps ``builds`` (the newest build of each part, by part name, kept however many warm runs follow), ``runs``
(the last ``KEEP_RUNS`` runs, warm or not) and ``failures`` (the last ``KEEP_RUNS`` failed runs). ``make tools``
records into ``REPORT_FILE``; ``make policy-tools`` into its own file with the same layout.

Standard library only (the builds run on the bare interpreter).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devtools.go_build import TOOLS_DIR, Go, Progress, ToolchainError, tail

REPORT_FILE = TOOLS_DIR / "report.json"
KEEP_RUNS = 10


@dataclass
class StepReport:
    """One part of a run (``pulumi CLI``, ``kubernetes provider``, ``plugin install``, ``helm``, ...)."""

    name: str
    outcome: str
    seconds: float
    built: bool = False
    """True when the part was (re)built: its stamp was missing or stale. False: a warm run that only checked stamps."""
    packages_compiled: int = 0
    """Packages ``go build -v`` / ``go run -v`` compiled: most of the dependency graph when Go's build cache was
    cold, a handful when it was warm (so a "built" step says which kind of build it timed)."""
    modules_downloaded: int = 0
    """Modules ``go`` downloaded into the module cache during the step (0 when the cache had them all)."""


@contextlib.contextmanager
def timed(name: str, reports: list[StepReport], progress: Progress, go: Go | None = None) -> Iterator[StepReport]:
    """Time one part; the caller fills in its outcome. A failing part is recorded too (outcome ``failed: ...``)."""
    progress(f"tools: {name} ...")
    step = StepReport(name, "done", 0.0)
    compiled, downloaded = (go.packages_compiled, go.modules_downloaded) if go is not None else (0, 0)
    started = time.monotonic()
    try:
        yield step
    except ToolchainError as error:
        step.outcome = f"failed: {str(error).splitlines()[0]}"
        raise
    finally:
        step.seconds = round(time.monotonic() - started, 1)
        if go is not None:
            step.packages_compiled = go.packages_compiled - compiled
            step.modules_downloaded = go.modules_downloaded - downloaded
        reports.append(step)
        progress(f"tools: {name}: {step.outcome} ({step.seconds:.1f}s)")


def read_report(path: Path | None = None) -> dict[str, Any]:
    """The report at ``path`` (default ``REPORT_FILE``), in the layout the module describes.

    Reads the older format too (a plain list of the last runs), taking each part's newest build from it.
    """
    path = REPORT_FILE if path is None else path
    data: Any = json.loads(path.read_text()) if path.exists() else {}
    if isinstance(data, list):  # the first format: the last runs only
        data = {"runs": data, "builds": {}, "failures": []}
        for run in data["runs"]:
            for step in run["steps"]:
                if str(step["outcome"]).startswith(("built", "installed")):
                    data["builds"][step["name"]] = {"at": run["at"], **step, "built": True}
    data.setdefault("builds", {})
    data.setdefault("runs", [])
    data.setdefault("failures", [])
    for run in data["runs"]:  # steps of the first format carry no ``built`` flag: their outcome says it
        for step in run["steps"]:
            step.setdefault("built", str(step["outcome"]).startswith(("built", "installed")))
    return dict(data)


def record(reports: list[StepReport], total: float, go_version: str, error: str = "", path: Path | None = None) -> None:
    """Add this run to the report at ``path`` (default ``REPORT_FILE``)."""
    path = REPORT_FILE if path is None else path
    report = read_report(path)
    at = time.strftime("%Y-%m-%d %H:%M:%S")
    run: dict[str, Any] = {
        "at": at,
        "seconds": round(total, 1),
        "outcome": "failed" if error else "ok",
        "go": go_version,
        "steps": [asdict(r) for r in reports],
    }
    if error:
        run["error"] = tail(error, 12)
        report["failures"] = [*report["failures"], run][-KEEP_RUNS:]
    report["runs"] = [*report["runs"], run][-KEEP_RUNS:]
    for step in reports:
        if step.built and not step.outcome.startswith("failed"):
            report["builds"][step.name] = {"at": at, "go": go_version, **asdict(step)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


def build_logs(tools_dir: Path | None = None) -> list[Path]:
    """The toolchain's build logs, newest first: the background run's (``build.log``) and each part's."""
    tools_dir = TOOLS_DIR if tools_dir is None else tools_dir
    logs = [tools_dir / "build.log", *tools_dir.glob("pulumi-*/build.log")]
    return sorted((p for p in logs if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def log_tails(tools_dir: Path | None = None, lines: int = 30, logs: int = 2) -> str:
    """The tails of the newest build logs, for a failure message."""
    parts = []
    for log in build_logs(tools_dir)[:logs]:
        text = tail(log.read_text(errors="replace"), lines)
        parts.append(f"--- last {lines} lines of {log} ---\n{text or '(empty)'}")
    return "\n".join(parts) or "(no build log: `make tools` has not run in this checkout)"
