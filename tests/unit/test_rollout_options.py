"""The canary's options as the demo and the retraining trigger take them, and the embedded trigger's command: the
settings' retraining choices reach the supervised ``retrain`` service as ``mlstack trigger serve`` options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import typer

from cli.rollout_options import rollout_config
from local.alerting import retrain_trigger_service
from local.settings import EmbeddedSettings, RetrainSettings


def test_the_options_make_a_checked_rollout_config_and_name_a_bad_value() -> None:
    config = rollout_config("50,100", 80, "better", 150)
    assert config.schedule == (50, 100)
    assert (config.analysis.min_requests, config.analysis.live_evidence, config.analysis.live_min_labels) == (
        80,
        "better",
        150,
    )
    with pytest.raises(typer.BadParameter, match=r"--live-evidence 'best': one of off, not worse, better"):
        rollout_config("50,100", 80, "best", 150)
    with pytest.raises(typer.BadParameter, match=r"--schedule '50,25': schedule must rise"):
        rollout_config("50,25", 80, "off", 150)


def test_the_trigger_service_runs_with_the_settings_retraining_choices(tmp_path: Path) -> None:
    retraining = RetrainSettings(
        trials=3, cooldown_s=60, window_s=15, schedule=(50, 100), live_evidence="better", history_s=720
    )
    settings = replace(EmbeddedSettings.on_free_ports(tmp_path), retraining=retraining)
    command = retrain_trigger_service(settings).command
    given = dict(zip(command[command.index("--trials") :: 2], command[command.index("--trials") + 1 :: 2], strict=True))
    assert given == {
        "--trials": "3",
        "--cooldown": "60",
        "--window": "15",
        "--schedule": "50,100",
        "--min-requests": "100",
        "--live-evidence": "better",
        "--live-min-labels": "200",
        "--history": "720",
        "--settle-margin": "60.0",
    }
    assert "--no-on-alerts" in command, "tests' settings start no runs on alerts unless asked"
