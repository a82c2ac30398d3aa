"""The kind tier's fixtures: a throw-away stack per test module, and its cluster once ``pulumi up`` made it.

A module names its stack with ``STACK`` (stack name, extra config); the stack has its own state folder, cluster name
and host ports, and is destroyed and removed after the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kind.kind_stack import kind_stack


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    name, config = request.module.STACK
    with kind_stack(tmp_path_factory, name, config) as created:
        yield created


@pytest.fixture(scope="module")
def cluster(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``pulumi up``; the kubeconfig and API clients of the new cluster (``cluster_helpers.up``)."""
    from tests.kind.cluster_helpers import up

    return up(stack, tmp_path_factory)
