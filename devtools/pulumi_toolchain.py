"""``make tools``: the pinned Pulumi engine for the render tier, built from Go modules when none is installed.

Uses ``pulumi`` from ``PATH`` when there is one, else builds the CLI; builds the Kubernetes provider and installs it
into the checkout's plugin home (the recipes: ``devtools/pulumi_builds.py``, on the shared Go builder
``devtools/go_build.py``; the folders and how the engine then runs: ``infra/engine.py``). A second run only checks
stamps; the Go module and build caches (the machine's, untouched) make a rebuild after a version bump cheaper.
Standard library only: ``make test`` starts it in the background and ``make tools`` runs it in the foreground (never
``make setup``, so the demo builds nothing it does not use).

For the render tier, ``locate()`` is strict: it gives a reason to skip only when Go is missing (nothing could have
built the engine); a failed build, a binary missing after a finished build or a toolchain built for other pins raises
``ToolchainError`` with the build log's tail, so the tier fails instead of silently skipping. ``report.json``
(``devtools/toolchain_report.py``) keeps the newest build of each part (cold or after a pin bump) apart from the
recent warm runs, and failed runs too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from devtools.go_build import TOOLS_DIR, Go, GoMissing, Progress, ToolchainError, exclusive, go_binary, locked
from devtools.pulumi_builds import (
    CLI_VERSION,
    PROVIDER_VERSION,
    PULUMI_HOME,
    Toolchain,
    build_cli,
    build_provider,
    cli_on_path,
    install_provider,
    wanted_plugin_version,
)
from devtools.toolchain_report import StepReport, log_tails, record, timed
from local.paths import REPO_ROOT
from local.progress import Phases, for_stream

FAILURE_FILE = TOOLS_DIR / "unavailable.txt"
BUILD_LOG = TOOLS_DIR / "build.log"
LOCK_FILE = TOOLS_DIR / ".lock"


def ensure(progress: Progress = print, phases: Phases | None = None) -> Toolchain:
    """Make the toolchain available (building what is missing) and record what it did and how long it took;
    ``phases`` shows the Go builds (default: a few lines via ``progress``)."""
    with exclusive(LOCK_FILE, BUILD_LOG, progress):
        return _ensure(progress, phases)


def _ensure(progress: Progress, phases: Phases | None) -> Toolchain:
    reports: list[StepReport] = []
    began = time.monotonic()
    go_version = ""
    try:
        wanted = wanted_plugin_version()
        notes: list[str] = []
        go = Go(go_binary(), progress, phases)
        go_version = go.version.strip()
        on_path = cli_on_path()
        with timed("pulumi CLI", reports, progress, go) as step:
            if on_path is not None:
                root, cli_version, source = on_path[0], on_path[1], "PATH"
                step.outcome = f"using {root / 'bin' / 'pulumi'} ({cli_version}) from PATH"
            else:
                root, built = build_cli(go, progress)
                cli_version, source = CLI_VERSION, "built from Go modules"
                step.outcome, step.built = f"{built}: {root / 'bin' / 'pulumi'}", built == "built"
                notes.append(
                    "no pulumi-language-python binary (its Go module is refused by the proxy, 403): programs run "
                    "inline through the Automation API, where the Python SDK serves the language runtime to the engine"
                )
        with timed("kubernetes provider", reports, progress, go) as step:
            provider_bin, provider_version, built = build_provider(go, progress)
            step.outcome, step.built = f"{built}: {provider_bin}", built == "built"
        toolchain = Toolchain(
            pulumi_root=root,
            cli_version=cli_version,
            cli_source=source,
            provider_bin=provider_bin,
            provider_version=provider_version,
            wanted_provider_version=wanted,
            pulumi_home=PULUMI_HOME,
            notes=tuple(notes),
        )
        with timed("plugin install", reports, progress) as step:
            step.outcome = install_provider(toolchain)
            step.built = step.outcome != "up to date"
    except ToolchainError as error:
        FAILURE_FILE.write_text(str(error).splitlines()[0] + "\n" + str(error))
        record(reports, time.monotonic() - began, go_version, error=str(error))
        raise
    FAILURE_FILE.unlink(missing_ok=True)
    total = time.monotonic() - began
    (TOOLS_DIR / "toolchain.json").write_text(json.dumps(_to_json(toolchain), indent=2))
    record(reports, total, go_version)
    for line in toolchain.describe():
        progress(f"tools: {line}")
    progress(f"tools: done in {total:.1f}s")
    return toolchain


def _to_json(toolchain: Toolchain) -> dict[str, object]:
    data = asdict(toolchain)
    return {k: str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}


def locate() -> Toolchain | str:
    """The toolchain ``make tools`` built, for the render tier and the benchmark.

    Returns a one-line reason (to skip with) only when Go is missing and nothing usable is built: nothing could build
    the engine here. Everything else is a failure the caller must not hide, so it raises ``ToolchainError`` with the
    build logs' tails: a failed build, no build at all, a binary missing after a finished build, or a toolchain
    built for other pins than this checkout's.
    """
    tools_dir = TOOLS_DIR  # read at call time (tests point it elsewhere)
    failure = tools_dir / FAILURE_FILE.name
    recorded = tools_dir / "toolchain.json"
    try:
        go_binary()
        no_go = ""
    except GoMissing as error:
        no_go = str(error)
    if failure.exists():
        if no_go:
            return no_go
        raise ToolchainError(
            f"the Pulumi toolchain build failed: {failure.read_text().splitlines()[0]}\n"
            f"rerun `make tools` after fixing it\n{log_tails(tools_dir)}"
        )
    if not recorded.exists():
        if no_go:
            return no_go
        raise ToolchainError(f"the Pulumi toolchain is not built: run `make tools`\n{log_tails(tools_dir)}")
    data = json.loads(recorded.read_text())
    toolchain = Toolchain(
        pulumi_root=Path(data["pulumi_root"]),
        cli_version=data["cli_version"],
        cli_source=data["cli_source"],
        provider_bin=Path(data["provider_bin"]),
        provider_version=data["provider_version"],
        wanted_provider_version=data["wanted_provider_version"],
        pulumi_home=Path(data["pulumi_home"]),
        notes=tuple(data["notes"]),
    )
    missing = [str(p) for p in (toolchain.pulumi, toolchain.provider_bin) if not p.exists()]
    if missing:
        raise ToolchainError(
            f"the Pulumi toolchain build finished but {', '.join(missing)} is missing: run `make tools`\n"
            + log_tails(tools_dir)
        )
    stale = []
    if toolchain.cli_source != "PATH" and toolchain.cli_version != CLI_VERSION:
        stale.append(f"CLI {toolchain.cli_version} (pinned: {CLI_VERSION})")
    if toolchain.provider_version != PROVIDER_VERSION.lstrip("v"):
        stale.append(f"provider {toolchain.provider_version} (pinned: {PROVIDER_VERSION})")
    if stale:
        raise ToolchainError(f"the built Pulumi toolchain is not this checkout's: {'; '.join(stale)}; run `make tools`")
    return toolchain


def start_background_build() -> str:
    """For ``make test``: build the toolchain in the background, at the lowest CPU priority, so a cold build (tens
    of minutes on 2 cores) overlaps the other tiers instead of preceding them; the render tier, which runs last,
    waits for it. Never fails the caller."""
    if locked(LOCK_FILE):
        return f"a build is already running (log: {BUILD_LOG})"
    with contextlib.suppress(ToolchainError):
        if isinstance(locate(), Toolchain):  # built for this checkout's pins: nothing to start
            return f"up to date ({TOOLS_DIR})"
    FAILURE_FILE.unlink(missing_ok=True)
    with BUILD_LOG.open("w") as log:
        # Detached and writing to its own log: it must not hold the caller's output open (a CI log pipe would wait).
        subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "devtools.pulumi_toolchain"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    time.sleep(1)  # let it take the lock, so a waiter that starts right after sees the build as running
    return f"building in the background at low priority (log: {BUILD_LOG}); the render tier waits for it"


def wait_for_build(timeout_s: float, progress: Progress = print) -> bool:
    """Block until no toolchain build is running in this checkout; False if one still runs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while locked(LOCK_FILE):
        if not announced:
            progress(f"tools: waiting for the toolchain build in the background (log: {BUILD_LOG})")
            announced = True
        if time.monotonic() > deadline:
            return False
        time.sleep(5)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.pulumi_toolchain", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the toolchain is built, build nothing")
    parser.add_argument(
        "--background", action="store_true", help="build in the background at low priority (make test), log to a file"
    )
    args = parser.parse_args(argv)
    if args.background:
        print(f"tools: Pulumi toolchain for the render tier: {start_background_build()}", flush=True)
        return 0
    if args.check:
        try:
            found = locate()
        except ToolchainError as error:
            print(f"tools: {error}")
            return 1
        if isinstance(found, str):
            print(f"tools: {found}")
            return 1
        print("\n".join(f"tools: {line}" for line in found.describe()))
        return 0
    # A bar on a terminal when rich can be imported (this runs on the system python too); lines otherwise, which
    # is what the background build writes to its log and a waiting `make tools` follows.
    emit, phases = for_stream(sys.stdout)
    try:
        ensure(progress=emit, phases=phases)
    except ToolchainError as error:
        print(f"tools: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
