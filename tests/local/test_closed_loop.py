"""Issue 19's closed loop, by itself, in embedded mode (fraud): the demo's loop run as ``mlstack demo --drift`` runs
it, on a service set of its own with the drill's times (``local.loop_drill``).

The world changes (card testing at new merchants) a few minutes after the backlog; nobody acts after that. Required,
in order: an alert a new model fixes reaches the receiver and the trigger, the trigger starts a retraining run (after
waiting for the labels of the changed world), the gate registers a challenger, its canary steps, and it is promoted
on live labels that show it better; the champion's live metric fell after the change and the promoted model's is
above it at the end. And a control run on the same services, first, on a world that does not change, watched as
long as the loop may take: no alert of any kind, no retraining run.

Real engines throughout: Kafka, Flink (feature and monitor jobs), Feast, the KServe model servers behind HAProxy,
Prometheus and Alertmanager from Debian, the trigger as the supervised ``retrain`` service, the KFP local runner with
Ray Tune and MLflow. The labels come with fraud's own delays (up to four minutes), so each run takes minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from cli.demo_loop import run_loop_demo
from cli.demo_state import DemoOptions
from local.loop_drill import ORDER, drill_settings
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings

pytestmark = pytest.mark.local

WATCHED_S = 18 * 60
"""How long each run is watched from the moment the first model serves: the loop must close within it, and the
control run watches a world without change for all of it (run first, so no cooldown of the loop's run hides a
run it would start)."""
OPTIONS = DemoOptions(
    component="fraud",
    events=64_000,
    seed=11,
    champion_trials=2,
    drift=True,
    change_after_s=150.0,
    loop_timeout_s=WATCHED_S,
    recovery_s=90.0,
)
"""Eighty minutes of fraud: the first model learns from the twenty after its one-hour windows filled; the world
changes once it serves."""


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSettings]:
    """Settings for a service set of this module's own (free ports, its own state), with the drill's times."""
    settings = drill_settings(EmbeddedSettings.on_free_ports(tmp_path_factory.mktemp("loop") / "state"))
    yield settings
    EmbeddedServices(settings).down(progress=print)


def test_a_world_that_does_not_change_raises_no_alert_and_starts_no_training(drill: EmbeddedSettings) -> None:
    options = replace(OPTIONS, change_after_s=None, seed=12)
    result = run_loop_demo(options, progress=print, settings=drill)
    loop = result.loop
    assert loop["watched_s"] >= WATCHED_S - 10, "watched the whole length"
    assert loop["alerts"] == 0 and loop["runs"] == 0, loop["events"]
    assert loop["order"] == []


def test_the_world_changes_and_the_loop_closes_by_itself_in_order(drill: EmbeddedSettings) -> None:
    result = run_loop_demo(OPTIONS, progress=print, settings=drill)
    loop = result.loop
    assert loop["order"] == list(ORDER), loop["events"]
    assert loop["runs"] == 1, "one run: the trigger's own rules hold the other alerts back"
    minutes = loop["minutes_from_change"]
    assert 0 < minutes["alert"] < minutes["retraining"] < minutes["registered"] < minutes["promoted"], minutes
    assert loop["champion_after_worst"] < loop["champion_before"], "the champion degraded after the change"
    assert loop["promoted_at_end"] > loop["champion_after_worst"], "the promoted model recovered the live metric"
    assert result.loop_report is not None and result.loop_report.stat().st_size > 10_000
