"""A render stack: the real Pulumi engine and Kubernetes provider writing the stack's manifests to a folder.

Runs one full cycle through the Automation API on a local file backend, with a passphrase from the environment:
``preview``, ``up`` (the provider in ``renderYamlToDirectory`` mode, no cluster), a second ``up`` that must change
nothing, then ``destroy``, which must remove the rendered files. A copy of what was rendered is kept for the checks.

It runs in its own process (``python -m tests.render.render_stack WORK_DIR``): the inline program's runtime state is
global in the Pulumi SDK (the unit tier installs mocks in the pytest process), and the benchmark runs the same
cycle. The program is the project's own (``infra/``, on the kind stack's configuration with render mode switched on)
when it supports render mode, else a small stand-in that exercises the same path.

Inline programs are used because the Python language host (``pulumi-language-python``) is not on the module proxy:
in an inline program the Python SDK itself serves the language runtime to the engine, which is the engine's own path.
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

from embedded.paths import REPO_ROOT
from embedded.pulumi_toolchain import Toolchain, locate

STACK = "kind"
TEST_PASSPHRASE = "mlstack-render-tier-not-a-secret"
# The one config key (namespace ``mlstack``) the render stack sets, read by the program's typed config: when set, the
# cluster layer yields a Kubernetes provider that writes manifests to that folder instead of creating a cluster, and
# what cannot render offline (remote Helm charts fetched at deploy time, the kind cluster itself) is switched out.
# The program exports ``renderLeftOut``: one line per thing it switched out.
RENDER_DIR_KEY = "renderYamlToDirectory"
LEFT_OUT_OUTPUT = "renderLeftOut"


@dataclass
class RenderReport:
    program: str
    """``infra`` (the project's program) or ``stand-in`` (and why)."""
    cli: str
    provider: str
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
    left_out: list[str] = field(default_factory=list)
    engine_warnings: list[str] = field(default_factory=list)


def _program_supports_render(root: Path) -> str | None:
    """None when ``infra/`` can run in render mode, else why not (the stand-in program is used then)."""
    main = root / "infra" / "__main__.py"
    if not main.exists() or not (root / f"Pulumi.{STACK}.yaml").exists():
        return f"infra/__main__.py or Pulumi.{STACK}.yaml does not exist yet"
    sources = "\n".join(p.read_text() for p in (root / "infra").rglob("*.py"))
    if RENDER_DIR_KEY not in sources:
        return f"infra/ reads no `{RENDER_DIR_KEY}` config key yet (render mode)"
    return None


def infra_program(root: Path) -> Callable[[], None]:
    """The project's program, as the Python language host would run it (``main: infra/``)."""

    def run() -> None:
        runpy.run_path(str(root / "infra"), run_name="__main__")

    return run


def stand_in_program() -> None:
    """A small program on the same path: explicit provider in render mode, a CRD, workloads, a switched-out chart."""
    import pulumi
    import pulumi_kubernetes as k8s

    config = pulumi.Config("mlstack")
    provider = k8s.Provider("render", render_yaml_to_directory=config.get(RENDER_DIR_KEY))
    opts = pulumi.ResourceOptions(provider=provider)
    labels = {"app.kubernetes.io/name": "echo", "app.kubernetes.io/part-of": "mlstack"}
    ns = k8s.core.v1.Namespace("render-demo", metadata={"name": "render-demo"}, opts=opts)
    in_ns = pulumi.ResourceOptions(provider=provider, depends_on=[ns])
    crd = k8s.apiextensions.v1.CustomResourceDefinition(
        "widgets",
        metadata={"name": "widgets.render.mlstack.dev"},
        spec={
            "group": "render.mlstack.dev",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
        opts=opts,
    )
    k8s.apiextensions.CustomResource(
        "widget",
        api_version="render.mlstack.dev/v1",
        kind="Widget",
        metadata={"name": "widget", "namespace": "render-demo"},
        spec={"size": 3},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[ns, crd]),
    )
    k8s.core.v1.ConfigMap(
        "echo", metadata={"name": "echo", "namespace": "render-demo"}, data={"greeting": "hi"}, opts=in_ns
    )
    container = {
        "name": "echo",
        "image": "docker.io/hashicorp/http-echo:1.0.0",
        "args": ["-text=hi"],
        "ports": [{"containerPort": 5678}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    k8s.apps.v1.Deployment(
        "echo",
        metadata={"name": "echo", "namespace": "render-demo", "labels": labels},
        spec={
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
        opts=in_ns,
    )
    k8s.core.v1.Service(
        "echo",
        metadata={"name": "echo", "namespace": "render-demo"},
        spec={"selector": labels, "ports": [{"port": 80, "targetPort": 5678}]},
        opts=in_ns,
    )
    left_out = []
    if config.get(RENDER_DIR_KEY):
        left_out.append("helm chart echo-extras (remote repository, fetched at deploy time)")
    else:  # pragma: no cover - cluster mode only
        k8s.helm.v4.Chart("echo-extras", chart="oci://example.invalid/echo", version="1.0.0", opts=in_ns)
    pulumi.export(LEFT_OUT_OUTPUT, left_out)


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


def run_cycle(
    toolchain: Toolchain, work: Path, log: Callable[[str], None] = print, root: Path = REPO_ROOT
) -> RenderReport:
    """preview, up, up again, destroy on a fresh file backend under ``work``; returns what happened and how long.

    ``root`` is the project (Pulumi.yaml, Pulumi.kind.yaml, infra/): the repository, or a copy of it.
    """
    from pulumi import automation as auto

    for sub in ("backend", "workspace", "rendered", "snapshot"):
        shutil.rmtree(work / sub, ignore_errors=True)
        (work / sub).mkdir(parents=True)
    rendered, snapshot, workspace = work / "rendered", work / "snapshot", work / "workspace"
    why_not_infra = _program_supports_render(root)
    program = infra_program(root) if why_not_infra is None else stand_in_program
    project = "mlstack"
    if why_not_infra is None:
        # The project and kind stack files, copied so that the render keys never touch the repository's stack file.
        shutil.copyfile(root / "Pulumi.yaml", workspace / "Pulumi.yaml")
        shutil.copyfile(root / f"Pulumi.{STACK}.yaml", workspace / f"Pulumi.{STACK}.yaml")
        (workspace / "infra").symlink_to(root / "infra")
        project_settings = None
    else:
        project_settings = auto.ProjectSettings(name=project, runtime="python")
    env = toolchain.env()
    env_vars = {k: v for k, v in env.items() if os.environ.get(k) != v}
    env_vars["PULUMI_BACKEND_URL"] = (work / "backend").as_uri()
    env_vars["PULUMI_CONFIG_PASSPHRASE"] = os.environ.get("PULUMI_CONFIG_PASSPHRASE", TEST_PASSPHRASE)
    os.environ.update(env_vars)  # the inline program's process starts plugins too (e.g. for invokes)
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(workspace),
        pulumi_home=str(toolchain.pulumi_home),
        env_vars=env_vars,
        project_settings=project_settings,
        pulumi_command=auto.PulumiCommand(root=str(toolchain.pulumi_root)),
    )
    stack = auto.create_or_select_stack(STACK, project_name=project, program=program, opts=opts)
    stack.set_config(f"mlstack:{RENDER_DIR_KEY}", auto.ConfigValue(str(rendered)))
    report = RenderReport(
        program="infra" if why_not_infra is None else f"stand-in ({why_not_infra})",
        cli=f"{toolchain.cli_version} ({toolchain.cli_source})",
        provider=toolchain.provider_version,
    )
    warnings: list[str] = []

    def collect(line: str) -> None:
        found = re.search(r"warning: (.*)", line)
        if found:
            warnings.append(found.group(1).strip())

    log(f"render: program {report.program}; cli {report.cli}; provider {report.provider}")
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
    report.left_out = [str(item) for item in (left_out.value if left_out is not None else None) or []]
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
    stack.workspace.remove_stack(STACK)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("work", type=Path, help="folder for the backend, workspace and rendered files")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the project (default: this repository)")
    args = parser.parse_args(argv)
    found = locate()
    if isinstance(found, str):
        print(f"render: {found}", file=sys.stderr)
        return 3
    report = run_cycle(found, args.work.resolve(), log=lambda line: print(line, flush=True), root=args.root.resolve())
    (args.work / "report.json").write_text(json.dumps(asdict(report), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
