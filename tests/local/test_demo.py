"""The main job end to end for both domains, on the shared services: streaming into Feast, the training
pipeline, a served champion, a challenger's canary with a verdict and a report; then a second run on the
leftovers, and an interrupted one that cleans up."""

from __future__ import annotations

import pytest

from contract.registry import load
from embedded.services import EmbeddedServices
from tests.local.demo_run import assert_lifecycle, small_demo


@pytest.mark.parametrize("name", ["demand", "fraud"])
def test_demo_runs_the_whole_lifecycle(embedded: EmbeddedServices, name: str) -> None:
    result = small_demo(embedded, name)
    assert_lifecycle(embedded, result)
    trained = result.trainings["challenger"].decision
    if load(name).model.baseline is not None:
        assert trained["holdout_score"] < trained["baseline_score"], "the forecast beats the naive baseline"
    assert set(result.phases) >= {"services up", "backlog into Feast", "first model", "canary"}
