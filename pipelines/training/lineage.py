"""Lineage recorded on every training run and registered version: where the model came from."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "mlstack."


def code_version() -> str:
    """``MLSTACK_CODE_VERSION`` (set in the project's images), else the git commit, ``-dirty`` when the work tree
    differs from it."""
    if os.environ.get("MLSTACK_CODE_VERSION"):
        return os.environ["MLSTACK_CODE_VERSION"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit[:12]}-dirty" if dirty else commit[:12]


def feature_view_versions(store: Any, views: list[str]) -> dict[str, str]:
    """A content hash of each feature view's definition as registered: it changes exactly when the view does
    (Feast has no version numbers of its own)."""
    versions = {}
    for name in views:
        spec = store.get_feature_view(name).to_proto().spec.SerializeToString(deterministic=True)
        versions[name] = hashlib.sha256(spec).hexdigest()[:12]
    return versions


REASON = f"{PREFIX}reason"
"""Why the run was started (the retraining trigger's cause as JSON: alert, values, time); absent when not said."""


def tags(
    component: str,
    pipeline_run: str,
    data_window: str,
    features: list[str],
    views: dict[str, str],
    reason: str = "",
) -> dict[str, str]:
    return {
        f"{PREFIX}component": component,
        f"{PREFIX}pipeline_run": pipeline_run,
        f"{PREFIX}data_window": data_window,
        f"{PREFIX}features": ",".join(features),
        f"{PREFIX}feature_views": ",".join(f"{name}@{version}" for name, version in views.items()),
        f"{PREFIX}code_version": code_version(),
        **({REASON: reason[:5000]} if reason else {}),  # MLflow caps a tag's value at 5,000 characters
    }
