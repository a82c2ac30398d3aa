"""The loop's control is the loop's own drill on a world that does not change: ``control_arguments``, parsed by the
real ``mlstack demo`` command line, give the options ``drill_options`` gives the loop, but for the change."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import demo_cli
from cli.demo_loop import DRILL_WATCHED_S, control_arguments, drill_options
from cli.demo_state import CHANGE_AFTER_S, DemoOptions
from cli.mlstack import app

pytestmark = pytest.mark.unit


class Parsed(Exception):
    """Stops the demo once its options are parsed: nothing is started."""


def test_the_control_is_the_loop_drill_on_a_world_without_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parsed: list[DemoOptions] = []

    def capture(options: DemoOptions, **_: object) -> None:
        parsed.append(options)
        raise Parsed

    monkeypatch.setattr(demo_cli, "run_loop_demo", capture)
    monkeypatch.setenv("MLSTACK_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo", *control_arguments("fraud", seed=11)])
    assert isinstance(result.exception, Parsed), result.output

    (control,) = parsed
    loop = drill_options("fraud", seed=11)
    for name in ("component", "events", "seed", "champion_trials", "drift", "loop_timeout_s"):
        assert getattr(control, name) == getattr(loop, name), name
    assert control.loop_timeout_s == DRILL_WATCHED_S
    assert loop.change_after_s == CHANGE_AFTER_S and control.change_after_s is None
