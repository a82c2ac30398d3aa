"""On one machine the local runner's steps yield the CPU to what streams and serves: they run at a lower priority,
which the search's Ray workers inherit; the cluster never sets it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipelines.training import runner
from pipelines.training.steps import STEP_NICENESS, yield_cpu

pytestmark = pytest.mark.unit

CHILD = (
    "import os, subprocess, sys\n"
    "from pipelines.training.steps import yield_cpu\n"
    "mine = yield_cpu()\n"
    "worker = subprocess.run([sys.executable, '-c', 'import os; print(os.nice(0))'], capture_output=True, text=True)\n"
    "print(mine, worker.stdout.strip())\n"
)


def test_a_step_run_by_the_local_runner_lowers_its_priority_and_its_workers_inherit_it() -> None:
    base = os.nice(0)
    with runner._unbuffered_steps():
        assert os.environ[STEP_NICENESS] == str(runner.LOCAL_STEP_NICENESS)
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    assert STEP_NICENESS not in os.environ, "the runner's process and what it starts later keep their priority"
    expected = min(base + runner.LOCAL_STEP_NICENESS, 19)
    assert out.split() == [str(expected), str(expected)]
    assert yield_cpu() == base, "without the variable (the cluster's pods) nothing changes"


def test_a_niceness_that_is_not_a_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STEP_NICENESS, "low")
    with pytest.raises(ValueError, match="MLSTACK_STEP_NICENESS='low' is not a whole number"):
        yield_cpu()
