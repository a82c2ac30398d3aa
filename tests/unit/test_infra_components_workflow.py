"""The kind-tier workflow: every action pinned to an exact release, the tools pinned, and it runs the kind marker
(the tests in tests/kind, which skip where Docker, kind, kubectl or the Pulumi CLI are missing)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import yaml

from infra.cluster import preflight

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "kind.yml"


def _workflow() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _steps() -> list[dict[str, str]]:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    steps: list[dict[str, str]] = jobs["kind"]["steps"]
    return steps


def test_actions_are_pinned_to_exact_releases() -> None:
    uses = [s["uses"] for s in _steps() if "uses" in s]
    assert uses
    for action in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", action), action


def test_tools_are_pinned_and_the_kind_tier_runs() -> None:
    env = _workflow()["env"]
    assert isinstance(env, dict)
    assert re.fullmatch(r"\d+\.\d+\.\d+", env["PULUMI_VERSION"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", env["KIND_VERSION"])
    # The same kind release the preflight tells people to install.
    assert f"sigs.k8s.io/kind@{env['KIND_VERSION']}" in inspect.getsource(preflight)
    runs = "\n".join(s.get("run", "") for s in _steps())
    assert "--require-hashes" in runs
    assert re.search(r"pytest -m kind\b", runs)
    assert _workflow()["permissions"] == {"contents": "read"}
