"""The shipped multiclass domain through the whole embedded lifecycle: two event kinds streamed through Kafka and
Flink into Feast, outcomes joined from the delivery events, the training pipeline gated against the class shares,
a served champion answering per-class probabilities and a challenger's canary with a verdict and a report."""

from __future__ import annotations

from local.services import EmbeddedServices
from tests.local.demo_run import assert_lifecycle, small_demo


def test_delivery_goes_through_the_embedded_lifecycle(embedded: EmbeddedServices) -> None:
    result = small_demo(embedded, "delivery")
    assert_lifecycle(embedded, result)
    summary = result.to_dict()
    for decision in summary["trainings"].values():
        # Log loss, lower is better: the model beats the class shares by a clear margin, not by noise.
        assert decision["metric"] == "log_loss" and decision["baseline_score"] is not None, decision
        assert decision["holdout_score"] < 0.9 * decision["baseline_score"], decision
    assert summary["canary_responses"]["ok"] > 0, "per-class answers were served during the canary"
