"""The shipped multiclass domain in cluster mode, under Pulumi mocks: delivery gets every resource a use case has,
plus the topic its labels arrive on, with its own images, next to fraud and demand without touching theirs."""

from __future__ import annotations

import json

import pytest

from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_components import FEEDBACK_ROLES, ROLES, _owned, _roles, _with, roles_of


@pytest.fixture(scope="module")
def three() -> mocks.Run:
    return mocks.run(_with(["fraud", "demand", "delivery"]))


def test_delivery_renders_a_use_case_with_its_labels_topic(three: mocks.Run) -> None:
    assert _roles(three, "delivery") == ROLES | FEEDBACK_ROLES  # labels topic, monitor job and exporter
    assert _roles(three, "fraud") == roles_of("fraud") and _roles(three, "demand") == roles_of("demand")
    topics = {r.inputs["spec"]["topicName"] for r in _owned(three, "delivery") if r.typ.endswith(":KafkaTopic")}
    assert topics == {
        "delivery.events",
        "delivery.features",
        "delivery.events.dlq",
        "delivery.labels",
        "delivery.predictions",
        "delivery.scored",
        "delivery.predictions.dlq",
    }
    names = {r.name for r in three.registrations}
    assert {"image-serving-delivery", "image-pipeline-delivery"} <= names


def test_delivery_streaming_spec_carries_its_kinds_and_feedback(three: mocks.Run) -> None:
    """The Flink job reads the component's declarations from this ConfigMap, not from the component's code."""
    config = three.named("delivery-streaming-spec").inputs["data"]
    spec = json.loads(next(iter(config.values())))
    assert spec["events"]["kind"] == "kind"
    assert [k["name"] for k in spec["events"]["kinds"]] == ["placed", "delivered"]
    assert spec["feedback"] == {"kind": "delivered", "key": "order_id", "label": "outcome", "max_delay_s": 4200}
    assert {g["name"]: g["kinds"] for g in spec["groups"]}["courier_done_1h"] == ["delivered"]
    assert spec["topics"]["labels"] == "delivery.labels"
