"""The render tier: one render cycle (preview, up, up again, destroy) per session, shared by its checks.

The cycle runs in a child process (see ``render_stack``); its report and a copy of the rendered manifests stay in the
session's temp folder. The tier skips, with a one-line reason, only where Go is missing (nothing could build the
engine). Every other problem fails it: a failed toolchain build, a build still running after ``BUILD_WAIT_S``, a binary
missing after a finished build (each with the build log's tail), or the engine failing (with its output).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.go_build import ToolchainError
from devtools.pulumi_builds import Toolchain
from devtools.pulumi_toolchain import locate, wait_for_build
from devtools.toolchain_report import log_tails
from local.paths import REPO_ROOT

BUILD_WAIT_S = 3600  # cold on 2 cores: about 10 minutes alone, about 29 beside the other tiers
CYCLE_TIMEOUT = 1200  # seconds; the whole platform renders in well under this on 2 cores
_SUMMARY: list[str] = []


@dataclass(frozen=True)
class RenderRun:
    report: dict[str, Any]
    snapshot: Path
    """What ``pulumi up`` rendered (``0-crd/``, ``1-manifest/``), copied before ``destroy``."""
    output: str


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    # `make setup` builds the toolchain in the background while the other tiers run; this tier runs last.
    if not wait_for_build(timeout_s=BUILD_WAIT_S):
        pytest.fail(
            f"the Pulumi toolchain build still runs after {BUILD_WAIT_S}s (see `make tools`):\n{log_tails()}",
            pytrace=False,
        )
    try:
        found = locate()
    except ToolchainError as error:
        pytest.fail(str(error), pytrace=False)
    if isinstance(found, str):
        pytest.skip(found)  # Go is missing: the one reason to skip
    return found


@pytest.fixture(scope="session")
def render_run(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> RenderRun:
    run = render(tmp_path_factory.mktemp("render"), "kind")
    _SUMMARY[:] = summary_lines(run.report, toolchain)
    return run


@pytest.fixture(scope="session")
def render_run_gke(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> RenderRun:
    """The cloud stack (``Pulumi.gke.yaml``), rendered the same way: render mode creates no GKE cluster."""
    return render(tmp_path_factory.mktemp("render-gke"), "gke")


def render(work: Path, stack: str) -> RenderRun:
    """One render cycle of ``stack`` in a child process; fails the test with the output's tail if it fails."""
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "render-tier-test")}
    result = subprocess.run(
        [sys.executable, "-m", "tests.render.render_stack", str(work), "--stack", stack],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CYCLE_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-40:])
        pytest.fail(f"the {stack} render cycle failed (exit {result.returncode}):\n{tail}", pytrace=False)
    report = json.loads((work / "report.json").read_text())
    return RenderRun(report=report, snapshot=work / "snapshot", output=output)


def summary_lines(report: dict[str, Any], toolchain: Toolchain) -> list[str]:
    kinds = ", ".join(f"{kind} {count}" for kind, count in report["kinds"].items())
    left_out = report["left_out"]
    lines = [
        f"program: {report['program']}; config on top of Pulumi.kind.yaml: {report['config']}",
        f"engine: pulumi {report['cli']}; kubernetes provider {report['provider']}",
        f"preview {report['preview_seconds']}s, render (up) {report['up_seconds']}s, second up "
        f"{report['second_up_seconds']}s, destroy {report['destroy_seconds']}s",
        f"rendered {sum(report['kinds'].values())} objects in {len(report['rendered_files'])} files: {kinds}",
        "left out by render mode: " + ("; ".join(left_out) if left_out else f"{left_out!r} (expected every upstream)"),
    ]
    if toolchain.provider_is_ambient:
        lines.append(
            f"note: provider {toolchain.provider_version} stands in for the {toolchain.wanted_provider_version} "
            "the pulumi-kubernetes wheel asks for (the Go module proxy refuses that version, 403; the only "
            "provider/v4 build it serves is this pseudo-version)"
        )
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SUMMARY:
        terminalreporter.section("render tier (real Pulumi engine)")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
