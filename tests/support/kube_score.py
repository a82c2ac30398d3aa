"""kube-score on rendered objects, as the manifest and render tiers run it: the critical findings, none expected."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


def critical_findings(kube_score: Path, objects: list[dict[str, Any]], ignored: Iterable[str], file: Path) -> list[str]:
    """Write ``objects`` to ``file`` and score them, skipping the ``ignored`` checks (each ignored for a reason
    recorded where the set is defined); the ``[CRITICAL]`` lines. A run that scored nothing fails."""
    file.write_text(yaml.safe_dump_all(objects))
    args = [str(kube_score), "score", "--output-format", "ci", str(file)]
    for check in ignored:
        args += ["--ignore-test", check]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert "[OK]" in result.stdout, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("[CRITICAL]")]
