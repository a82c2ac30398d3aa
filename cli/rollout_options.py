"""The canary's options as ``mlstack demo`` and ``mlstack trigger serve`` take them: text in, a checked
``RolloutConfig`` out, each bad value named."""

from __future__ import annotations

from typing import cast, get_args

import typer

from contract.live_evaluation import Evidence
from serving.rollout.analysis import AnalysisConfig
from serving.rollout.rollout import RolloutConfig


def rollout_config(schedule: str, min_requests: int, live_evidence: str, live_min_labels: int) -> RolloutConfig:
    """The canary's configuration from the command line's text."""
    if live_evidence not in get_args(Evidence):
        raise typer.BadParameter(f"--live-evidence {live_evidence!r}: one of {', '.join(get_args(Evidence))}")
    try:
        shares = tuple(int(share) for share in schedule.split(","))
        analysis = AnalysisConfig(
            min_requests=min_requests, live_evidence=cast(Evidence, live_evidence), live_min_labels=live_min_labels
        )
        return RolloutConfig(schedule=shares, analysis=analysis)
    except ValueError as error:
        raise typer.BadParameter(f"--schedule {schedule!r}: {error}") from None
