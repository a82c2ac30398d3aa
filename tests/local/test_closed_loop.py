"""Issue 19's closed loop, by itself, in embedded mode (fraud), as ``mlstack demo --drift`` runs it with the drill's
times (``local.loop_drill``); and beside it, at the same time, a control run of the same length on a world that does
not change.

The loop: the world changes (a marketplace opens and card testing starts) a couple of minutes after the champion
serves; nobody acts after that. Required, in order: an alert a new model fixes reaches the receiver and the trigger,
the trigger starts a retraining run (after waiting for labels of the changed world), the gate registers a
challenger, its canary steps and it is promoted on live labels that show it better; the champion's live metric fell
after the change and the promoted model's is above it at the end.

The control: the same drill run as a person runs it (``mlstack demo --drift --change-after 0``, the CLI in a state
folder of its own), watched at least as long as the loop took: no alert of any kind, no retraining run.

Both run at once on separate service sets (each its own Kafka, Flink jobs, model servers, Prometheus, Alertmanager
and trigger), so the control also shows that a busy machine (the loop's training beside it) is not a changed world.
Real engines throughout; the labels come with fraud's own delays (up to four minutes), so this takes about half an
hour: ``make test-loop`` runs it, ``make test`` leaves it out (marker ``loop``) to stay well inside CI's time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.demo_loop import DRILL_WATCHED_S, control_arguments, drill_options, run_loop_demo
from local.loop_drill import ORDER
from local.paths import REPO_ROOT
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from tests.conftest import isolated_settings, settings_env

pytestmark = [pytest.mark.local, pytest.mark.loop, pytest.mark.timeout(50 * 60)]

LOOP = drill_options("fraud", seed=12)
CONTROL = control_arguments("fraud", seed=11)


def _control(settings: EmbeddedSettings) -> subprocess.Popen[str]:
    env = {**os.environ, **settings_env(settings)}
    log = (settings.state_dir.parent / "control.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", *CONTROL], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def test_the_world_changes_and_the_loop_closes_by_itself_while_a_world_without_change_raises_nothing(
    tmp_path: Path,
) -> None:
    control_settings = isolated_settings(tmp_path / "control" / "state")
    control_settings.state_dir.mkdir(parents=True, exist_ok=True)
    control = _control(control_settings)
    loop_settings = isolated_settings(tmp_path / "loop" / "state")
    try:
        result = run_loop_demo(LOOP, progress=print, settings=loop_settings)
        control.wait(timeout=DRILL_WATCHED_S + 15 * 60)
    finally:
        if control.poll() is None:
            control.kill()
        EmbeddedServices(loop_settings).down(progress=print)
        EmbeddedServices(control_settings).down(progress=print)
    output = (tmp_path / "control" / "control.log").read_text()
    print("control run:", output[-6000:], sep="\n")

    loop = result.loop
    assert loop["order"] == list(ORDER), loop["events"]
    assert loop["runs"] == 1, "one run: the trigger's own rules hold the other alerts back"
    minutes = loop["minutes_from_change"]
    # The trigger acts on an alert as it arrives (both recorded to the second).
    assert 0 < minutes["alert"] <= minutes["retraining"] < minutes["registered"] < minutes["promoted"], minutes
    assert loop["champion_after_worst"] < loop["champion_before"], "the champion degraded after the change"
    assert loop["promoted_at_end"] > loop["champion_after_worst"], "the promoted model recovered the live metric"
    assert result.loop_report is not None and result.loop_report.stat().st_size > 10_000

    assert control.returncode == 0, output[-4000:]
    summary = json.loads((control_settings.state_dir / "reports" / "fraud-demo.json").read_text())
    watched = summary["loop"]
    assert watched["watched_s"] >= loop["watched_s"], "the control was watched at least as long as the loop took"
    assert watched["alerts"] == 0 and watched["runs"] == 0, watched["events"]
    assert watched["order"] == []
