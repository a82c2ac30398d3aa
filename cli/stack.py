"""``make preview | up | down STACK=<stack>``: the Pulumi CLI on a stack, after checking what it needs.

Each missing piece is one line saying what to install: the Pulumi CLI (on PATH, or built by ``make tools``), and for
the kind stack Docker and kind (``up`` also runs the full preflight against the stack's profile and host ports:
memory, CPU, inotify, ports, architecture; memory, CPU and ports are skipped when the stack's kind cluster already
exists). For a GKE stack, ``up``/``down``/``preview`` need ``gcloud`` and ``gke-gcloud-auth-plugin`` on PATH.
Without a Pulumi login the state goes to a local file backend in ``.state/pulumi``; secrets are encrypted with
``PULUMI_CONFIG_PASSPHRASE`` (or ``_FILE``), which must be set. The program runs inline through the Automation API
on the project's stack files, so only the ``pulumi`` CLI is needed (no separately installed Python language plugin).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from infra import engine
from infra.cluster import preflight
from infra.config import ConfigError, parse, stack_settings
from infra.engine import pulumi_cli

COMMANDS = ("preview", "up", "down")


def problems(command: str, stack: str) -> list[str]:
    """What is missing to run ``command`` on ``stack``, one line each."""
    found = []
    if pulumi_cli() is None:
        found.append(
            "pulumi CLI not found: install it (https://www.pulumi.com/docs/install/) or build it with `make tools`"
        )
    try:
        config = parse(stack_settings(stack))
    except (FileNotFoundError, ConfigError) as error:
        return [*found, str(error)]
    if config.kind is not None and command in ("up", "down"):
        for check in (preflight.docker, preflight.kind_cli):
            problem = check()
            if problem:
                found.append(problem)
        if command == "up" and not found:
            # A second `up` on a running cluster: its port mapping holds the port and it already uses the memory.
            exists = preflight.kind_cluster_exists(config.kind.name)
            found.extend(preflight.problems(config.kind.host_ports, config.profile, cluster_exists=exists))
    if config.gke is not None:
        # The GCP provider uses gcloud's credentials; the cluster's kubeconfig execs gke-gcloud-auth-plugin.
        for check in (preflight.gcloud_cli, preflight.gke_auth_plugin):
            problem = check()
            if problem:
                found.append(problem)
    if not (os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        found.append(
            "PULUMI_CONFIG_PASSPHRASE is not set: export it (or PULUMI_CONFIG_PASSPHRASE_FILE) to encrypt the "
            "stack's secrets (generated passwords, the kubeconfig)"
        )
    return found


def program() -> None:
    """The Pulumi program, inline: the same as infra/__main__.py, run in this process by the Automation API (so no
    Python language plugin is needed beside the CLI)."""
    import pulumi

    from infra import config, stack

    stack.export(stack.build(config.load(), pulumi.get_stack()))


def environment(cli: Path, backend: str | None = None) -> dict[str, str]:
    """The engine's environment for the stack commands (``infra/engine.py``, as the render tier runs it): the CLI's
    folder, a provider built by `make tools` on PATH with plugin downloads off, the checkout's plugin home unless the
    user has a login, and ``backend`` (else the user's login, else the local file backend)."""
    if not backend:
        backend = engine.backend()
        if backend:
            print(f"no Pulumi login, using the local backend {backend}")
    return engine.environment(cli, providers=engine.built_providers(), home=engine.plugin_home(), backend=backend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.stack", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--stack", default="kind")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    found = problems(args.command, args.stack)
    for line in found:
        print(f"{args.command}: {line}", file=sys.stderr)
    if found:
        return 2
    from pulumi import automation as auto

    cli = pulumi_cli()
    assert cli is not None
    options = auto.LocalWorkspaceOptions(
        work_dir=str(engine.REPO_ROOT),  # Pulumi.yaml's config schema and Pulumi.<stack>.yaml apply as with the CLI
        env_vars=environment(cli),
        pulumi_command=auto.PulumiCommand(str(cli.parent.parent)),
    )
    try:
        stack = auto.create_or_select_stack(
            stack_name=args.stack, project_name="mlstack", program=program, opts=options
        )
        if args.command == "preview":
            stack.preview(on_output=print, color="auto")
        elif args.command == "up":
            if not (args.yes or os.environ.get("CI")):
                stack.preview(on_output=print, color="auto")
                if input(f"apply these changes to stack {args.stack}? [y/N] ").strip().lower() != "y":
                    return 1
            result = stack.up(on_output=print, color="auto")
            print("\n".join(f"{k}: {'[secret]' if v.secret else v.value}" for k, v in sorted(result.outputs.items())))
        else:
            confirmed = args.yes or os.environ.get("CI")
            if not confirmed and input(f"destroy everything in stack {args.stack}? [y/N] ").strip().lower() != "y":
                return 1
            stack.destroy(on_output=print, color="auto")
    except auto.CommandError as error:
        print(f"{args.command}: pulumi failed: {str(error).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
