"""A render stack: the real Pulumi engine and Kubernetes provider writing the stack's manifests to a folder.

Runs one full cycle through the Automation API on a local file backend, with a passphrase from the environment:
``preview``, ``up`` (the provider in ``renderYamlToDirectory`` mode, no cluster), a second ``up`` that must change
nothing, then ``destroy``, which must remove the rendered files. A copy of what was rendered is kept for the checks.

It runs in its own process (``python -m tests.render.render_stack WORK_DIR``): the inline program's runtime state is
global in the Pulumi SDK (the unit tier installs mocks in the pytest process), and the benchmark runs the same
cycle. The program is always the project's own (``infra/``, on the kind stack's configuration plus ``RENDER_CONFIG``);
there is no stand-in: if ``infra/`` stops supporting render mode, the cycle fails saying so.

Inline programs are used because the Python language host (``pulumi-language-python``) is refused by the module
proxy: in an inline program the Python SDK itself serves the language runtime to the engine, the engine's own path.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devtools.go_build import ToolchainError
from devtools.pulumi_builds import Toolchain
from devtools.pulumi_toolchain import locate
from local.paths import REPO_ROOT

STACK = "kind"
TEST_PASSPHRASE = "mlstack-render-tier-not-a-secret"
# The config key (namespace ``mlstack``) that switches the program to render mode, read by its typed config: the
# cluster layer yields a Kubernetes provider that writes manifests to that folder instead of creating a cluster, and
# what cannot render offline (upstream Helm charts and kustomizations fetched at deploy time, the kind cluster itself)
# is switched out. The program exports ``renderLeftOut``: one line per thing it switched out.
RENDER_DIR_KEY = "renderYamlToDirectory"
LEFT_OUT_OUTPUT = "renderLeftOut"
PROGRAM = "infra"


def render_config(stack: str = "kind") -> dict[str, Any]:
    """What the render stack sets on top of the kind stack's file (besides ``RENDER_DIR_KEY``), by config only.

    - ``components``: every available use-case component (the kind stack file sets none), so the render covers the
      objects they add: KafkaTopics, a FlinkDeployment, Jobs, Deployments and an InferenceService each.
    - ``images: prebuilt``: reference the project's images by content tag instead of running ``docker build`` and
      ``kind load`` (a dynamic resource that needs Docker and a cluster, neither of which render mode has).
    """
    from contract.registry import available

    config: dict[str, Any] = {"components": sorted(available()), "images": "prebuilt"}
    if stack == "gke":
        # What a user must set on the cloud stack (the stack file has no project and no networks); render mode
        # creates no cluster, so neither is reached.
        config |= {"gcpProject": "mlstack-render-tier", "controlPlaneAuthorizedNetworks": ["198.51.100.7/32"]}
    return config


@dataclass
class RenderReport:
    program: str
    """Always ``infra`` (the project's program); the checks assert it."""
    cli: str
    provider: str
    """The provider build the engine ran (from PATH when it stands in for another version)."""
    provider_wanted: str
    """The plugin version the ``pulumi-kubernetes`` wheel asks for."""
    provider_requested: str = ""
    """The version the program's provider resource asked the engine for (from the stack's state)."""
    config: dict[str, Any] = field(default_factory=dict)
    """What the render stack set (``mlstack:`` keys) on top of ``Pulumi.kind.yaml``."""
    preview_seconds: float = 0.0
    up_seconds: float = 0.0
    second_up_seconds: float = 0.0
    destroy_seconds: float = 0.0
    preview_changes: dict[str, int] = field(default_factory=dict)
    up_changes: dict[str, int] = field(default_factory=dict)
    second_up_changes: dict[str, int] = field(default_factory=dict)
    destroy_changes: dict[str, int] = field(default_factory=dict)
    rendered_files: list[str] = field(default_factory=list)
    """Relative to the snapshot folder (``0-crd/...``, ``1-manifest/...``)."""
    files_left_after_destroy: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    left_out: list[str] | None = None
    """The program's ``renderLeftOut`` output; None if it exported none (render mode gone from ``infra/``)."""
    engine_warnings: list[str] = field(default_factory=list)


def check_program(root: Path, stack: str = STACK) -> None:
    """Fail early, and say why, if ``infra/`` cannot run in render mode (there is no stand-in program)."""
    main = root / "infra" / "__main__.py"
    if not main.exists() or not (root / f"Pulumi.{stack}.yaml").exists():
        raise SystemExit(f"render: {main} or Pulumi.{stack}.yaml does not exist")
    sources = "\n".join(p.read_text() for p in (root / "infra").rglob("*.py"))
    if RENDER_DIR_KEY not in sources:
        raise SystemExit(f"render: infra/ reads no `{RENDER_DIR_KEY}` config key: render mode is gone from the program")


def infra_program(root: Path) -> Callable[[], None]:
    """The project's program, as the Python language host would run it (``main: infra/``)."""

    def run() -> None:
        runpy.run_path(str(root / "infra"), run_name="__main__")

    return run


def _changes(summary: Any) -> dict[str, int]:
    return {str(op): int(n) for op, n in dict(summary or {}).items()}


def _yaml_files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_documents(folder: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered files (one file can hold several documents)."""
    objects: list[dict[str, Any]] = []
    for name in _yaml_files(folder):
        for doc in yaml.safe_load_all((folder / name).read_text()):
            if isinstance(doc, dict) and doc.get("kind"):
                objects.append(doc)
    return objects


def _requested_provider_version(deployment: dict[str, Any]) -> str:
    """The version the program's Kubernetes provider resource asked for, as the engine recorded it."""
    for resource in deployment.get("resources", []):
        if str(resource.get("type")) == "pulumi:providers:kubernetes":
            return str((resource.get("inputs") or {}).get("version", ""))
    return ""


def run_cycle(
    toolchain: Toolchain,
    work: Path,
    log: Callable[[str], None] = print,
    root: Path = REPO_ROOT,
    stack_name: str = STACK,
) -> RenderReport:
    """preview, up, up again, destroy on a fresh file backend under ``work``; returns what happened and how long.

    ``root`` is the project (Pulumi.yaml, Pulumi.kind.yaml, infra/): the repository, or a copy of it.
    """
    from pulumi import automation as auto

    check_program(root, stack_name)
    for sub in ("backend", "workspace", "rendered", "snapshot"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True)
    rendered, snapshot, workspace = work / "rendered", work / "snapshot", work / "workspace"
    # The project and kind stack files, copied so that the render keys never touch the repository's stack file.
    shutil.copyfile(root / "Pulumi.yaml", workspace / "Pulumi.yaml")
    shutil.copyfile(root / f"Pulumi.{stack_name}.yaml", workspace / f"Pulumi.{stack_name}.yaml")
    (workspace / "infra").symlink_to(root / "infra")
    env = toolchain.env()
    env_vars = {k: v for k, v in env.items() if os.environ.get(k) != v}
    env_vars["PULUMI_BACKEND_URL"] = (work / "backend").as_uri()
    env_vars["PULUMI_CONFIG_PASSPHRASE"] = os.environ.get("PULUMI_CONFIG_PASSPHRASE", TEST_PASSPHRASE)
    os.environ.update(env_vars)  # the inline program's process starts plugins too (e.g. for invokes)
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(workspace),
        pulumi_home=str(toolchain.pulumi_home),
        env_vars=env_vars,
        pulumi_command=auto.PulumiCommand(root=str(toolchain.pulumi_root)),
    )
    stack = auto.create_or_select_stack(stack_name, project_name="mlstack", program=infra_program(root), opts=opts)
    config = {RENDER_DIR_KEY: str(rendered), **render_config(stack_name)}
    for key, value in config.items():
        if isinstance(value, list):
            for index, item in enumerate(value):
                stack.set_config(f"mlstack:{key}[{index}]", auto.ConfigValue(str(item)), path=True)
        else:
            stack.set_config(f"mlstack:{key}", auto.ConfigValue(str(value)))
    report = RenderReport(
        program=PROGRAM,
        cli=f"{toolchain.cli_version} ({toolchain.cli_source})",
        provider=toolchain.provider_version,
        provider_wanted=toolchain.wanted_provider_version,
        config={k: v for k, v in config.items() if k != RENDER_DIR_KEY},
    )
    warnings: list[str] = []

    def collect(line: str) -> None:
        found = re.search(r"warning: (.*)", line)
        if found:
            warnings.append(found.group(1).strip())

    log(f"render: program {report.program}; cli {report.cli}; provider {report.provider}; config {report.config}")
    started = time.monotonic()
    preview = stack.preview(color="never", on_output=collect)
    report.preview_seconds = round(time.monotonic() - started, 2)
    report.preview_changes = _changes(preview.change_summary)
    log(f"render: preview {report.preview_seconds}s {report.preview_changes}")

    started = time.monotonic()
    up = stack.up(color="never", on_output=collect)
    report.up_seconds = round(time.monotonic() - started, 2)
    report.up_changes = _changes(up.summary.resource_changes)
    left_out = up.outputs.get(LEFT_OUT_OUTPUT)
    report.left_out = None if left_out is None else [str(item) for item in left_out.value or []]
    report.provider_requested = _requested_provider_version(dict(stack.export_stack().deployment or {}))
    shutil.copytree(rendered, snapshot, dirs_exist_ok=True)
    report.rendered_files = _yaml_files(snapshot)
    report.kinds = dict(sorted(Counter(str(doc["kind"]) for doc in load_documents(snapshot)).items()))
    log(f"render: up {report.up_seconds}s {report.up_changes}; {len(report.rendered_files)} files {report.kinds}")

    started = time.monotonic()
    again = stack.up(color="never", on_output=collect)
    report.second_up_seconds = round(time.monotonic() - started, 2)
    report.second_up_changes = _changes(again.summary.resource_changes)
    log(f"render: second up {report.second_up_seconds}s {report.second_up_changes}")

    started = time.monotonic()
    destroy = stack.destroy(color="never", on_output=collect)
    report.destroy_seconds = round(time.monotonic() - started, 2)
    report.destroy_changes = _changes(destroy.summary.resource_changes)
    report.files_left_after_destroy = _yaml_files(rendered)
    log(f"render: destroy {report.destroy_seconds}s; files left {len(report.files_left_after_destroy)}")
    report.engine_warnings = sorted(set(warnings))
    stack.workspace.remove_stack(stack_name)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("work", type=Path, help="folder for the backend, workspace and rendered files")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project (default: this repository)")
    parser.add_argument("--stack", default=STACK, choices=("kind", "gke"), help="the stack file rendered")
    args = parser.parse_args(argv)
    try:
        found = locate()
    except ToolchainError as error:
        print(f"render: {error}", file=sys.stderr)
        return 2
    if isinstance(found, str):
        print(f"render: {found}", file=sys.stderr)
        return 3
    report = run_cycle(
        found,
        args.work.resolve(),
        log=lambda line: print(line, flush=True),
        root=args.root.resolve(),
        stack_name=args.stack,
    )
    (args.work / "report.json").write_text(json.dumps(asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
