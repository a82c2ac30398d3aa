"""The kind tier's throw-away stack: its own Pulumi state folder, cluster name and host port, the program run
inline through the Automation API (as `make up` runs it, so only the pulumi CLI is needed); destroyed and removed
afterwards, and checked to have taken its kind cluster with it (a cluster left behind is deleted and fails the run)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cli import stack as deploy
from infra.cluster import preflight
from local.service_spec import free_port


@contextmanager
def kind_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, extra_config: dict[str, str] | None = None
) -> Iterator[Any]:
    """Stack ``name`` on the kind stack's settings, on cluster ``mlstack-<name>``, plus ``extra_config``."""
    from pulumi import automation as auto

    cli = deploy.pulumi_cli()
    assert cli is not None
    state = tmp_path_factory.mktemp("pulumi-state")
    env = {**deploy.environment(cli, backend=state.as_uri()), "PULUMI_CONFIG_PASSPHRASE": "kind-tier"}
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(tmp_path_factory.mktemp("workspace")),
        env_vars=env,
        pulumi_command=auto.PulumiCommand(str(cli.parent.parent)),
    )
    stack = auto.create_or_select_stack(stack_name=name, project_name="mlstack", program=deploy.program, opts=workspace)
    cluster = f"mlstack-{name}"
    settings = {
        **deploy.stack_settings("kind"),
        "kindClusterName": cluster,
        "kindHttpPort": str(free_port()),
        "kindHttpsPort": str(free_port()),
        **(extra_config or {}),
    }
    for key, value in settings.items():
        stack.set_config(f"mlstack:{key}", auto.ConfigValue(value=value))
    try:
        yield stack
    finally:
        stack.destroy(on_output=print)
        left_behind = preflight.kind_cluster_exists(cluster)
        if left_behind:  # do not leak a cluster on the machine: remove it, then fail
            subprocess.run(["kind", "delete", "cluster", "--name", cluster], capture_output=True, check=False)
        stack.workspace.remove_stack(name)
        if left_behind:
            raise AssertionError(
                f"pulumi destroy left kind cluster {cluster} behind (deleted with `kind delete cluster`)"
            )
