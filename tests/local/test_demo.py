"""The main job end to end: streaming into Feast, the training pipeline, a served champion, a challenger's canary
with a verdict and a report. Demand runs as a person runs it (the CLI in its own state folder), is interrupted with
Ctrl-C, and is run again on its leftovers; delivery's runs in ``test_component_delivery.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from local.paths import REPO_ROOT
from local.services import EmbeddedServices
from local.supervisor_daemon import SupervisorDaemon
from tests.conftest import isolated_settings, settings_env
from tests.local.demo_run import assert_summary

DEMAND_DEMO = [
    *("--component", "demand", "--events", "12000", "--seed", "7", "--trials", "2", "--challenger-trials", "4"),
    *("--rate", "25", "--schedule", "20,50,100", "--min-requests", "30", "--monitor-wait", "20"),
]


def _started_by(state_dir: Path) -> list[psutil.Process]:
    """Every process the demo started, directly or under its supervisor: they inherit its state folder."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("MLSTACK_STATE_DIR") == str(state_dir) and process.pid != os.getpid():
                found.append(process)
        except psutil.Error:
            continue
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _demo(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", *DEMAND_DEMO],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so Ctrl-C reaches all of it, as from a terminal
        # A CI job started in the background may have SIGINT ignored, which the child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_demand_demo_interrupted_cleans_up_and_a_second_run_on_the_leftovers_succeeds(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "state")
    env = {**os.environ, **settings_env(settings)}
    first = _demo(env)
    assert first.stdout is not None
    try:
        seen = []
        for line in first.stdout:  # Ctrl-C while the challenger trains: champion served, stream and Ray running
            seen.append(line)
            if line.startswith("[6/9]"):
                break
        assert seen and seen[-1].startswith("[6/9]"), "".join(seen[-30:])
        time.sleep(15)
        assert len(_started_by(settings.state_dir)) >= 8  # services, Flink, pusher, archive, server, proxy, KFP
        os.killpg(first.pid, signal.SIGINT)
        rest, _ = first.communicate(timeout=180)
        assert first.returncode != 0
        assert "interrupted: stopping everything the demo started" in rest, rest[-3000:]
        time.sleep(2)
        assert _started_by(settings.state_dir) == [], [p.cmdline()[:3] for p in _started_by(settings.state_dir)]
        assert not SupervisorDaemon(settings.state_dir).running()

        second = subprocess.run(
            [sys.executable, "-m", "cli", "demo", *DEMAND_DEMO],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
        assert "is already champion (an earlier demo)" in second.stdout
        # The summary shows what is left running: the services and the component's programs.
        assert "component programs" in second.stdout and "proxy-demand" in second.stdout, second.stdout[-3000:]
        summary = json.loads((settings.state_dir / "reports" / "demand-demo.json").read_text())
        assert_summary(EmbeddedServices(settings), summary)
        assert summary["champion_reused"] and "champion" not in summary["trainings"]
        challenger = summary["trainings"]["challenger"]
        assert challenger["holdout_score"] < challenger["baseline_score"], "the forecast beats the naive baseline"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        EmbeddedServices(settings).down(progress=print)
    assert _started_by(settings.state_dir) == []
