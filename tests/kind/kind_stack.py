"""The kind tier's throw-away stack: its own Pulumi state folder, cluster name and host port, the program run
inline through the Automation API (as `make up` runs it, so only the pulumi CLI is needed); destroyed and removed
afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from embedded.service_spec import free_port
from infra import deploy


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
    settings = {
        **deploy.stack_settings("kind"),
        "kindClusterName": f"mlstack-{name}",
        "kindHttpPort": str(free_port()),
        **(extra_config or {}),
    }
    for key, value in settings.items():
        stack.set_config(f"mlstack:{key}", auto.ConfigValue(value=value))
    try:
        yield stack
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(name)
