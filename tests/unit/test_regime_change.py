"""Worlds that change: each domain's generator takes a regime change at an event time (``change_at_ms``).

Offline, with each component's own model code and metric (the pandas reference of the streaming windows,
``tests/offline_quality.py``): a model trained before the change is clearly worse after it than on its own period,
and a model retrained after it beats it there by far more than the metric's tolerance. Without a change the stream
is exactly the one the generators gave before the keyword existed (the demo's figures rest on it), and before the
change it is the same stream; labels keep their feedback rules either way."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from contract import Component
from contract.component import ContractError
from contract.model import EVENT_TIMESTAMP
from contract.registry import load
from contract.tasks import encode_target
from tests.offline_quality import training_frame

START_MS = 1_790_000_000_000 - 1_790_000_000_000 % 60_000
DOMAINS = ("fraud", "demand", "delivery")
STATIONARY_SHA256 = {
    "fraud": "845999ac02b0162e669312456d9fae6891bc7a26da881933829f27d9639ab360",
    "demand": "123e47e226708163053f4d365b64e97308c50cd46fb0f215374ef179a2d430f6",
    "delivery": "2b9349f8ad9fb822b75803c5115c7a9153ed403b4ee2a6a8264d67531f58c2b5",
}
"""``generate(4_000, 1_790_000_000_000, 3)`` of each domain as JSON, recorded before ``change_at_ms`` existed."""


@pytest.mark.parametrize("name", DOMAINS)
def test_no_change_is_exactly_the_stationary_stream_of_before(name: str) -> None:
    generate = load(name).generate
    events = list(generate(4_000, 1_790_000_000_000, 3, change_at_ms=None))
    assert hashlib.sha256(json.dumps(events).encode()).hexdigest() == STATIONARY_SHA256[name]
    assert events == list(generate(4_000, 1_790_000_000_000, 3))


@pytest.mark.parametrize("name", DOMAINS)
def test_before_the_change_the_stream_is_the_stationary_one_and_after_it_differs(name: str) -> None:
    component = load(name)
    stationary = list(component.generate(6_000, START_MS, 5))
    change = _middle(component, stationary)
    changed = list(component.generate(6_000, START_MS, 5, change_at_ms=change))
    before = [e for e in stationary if e["event_time"] < change]
    assert changed[: len(before)] == before
    assert changed[len(before) :] != stationary[len(before) :]
    _assert_labels_keep_their_feedback_rules(component, changed)


def test_a_change_at_that_is_no_event_time_is_refused() -> None:
    soon: Any = "soon"  # what an untyped caller might pass
    for name in DOMAINS:
        with pytest.raises(ValueError, match=r"change_at_ms must be an event time in epoch milliseconds.*'soon'"):
            next(iter(load(name).generate(10, START_MS, 1, change_at_ms=soon)))


def test_a_generator_without_the_change_keyword_breaks_the_contract() -> None:
    from dataclasses import replace

    fraud = load("fraud")

    def generate(n_events: int, start_ms: int, seed: int = 0) -> Any:
        return fraud.generate(n_events, start_ms, seed)

    stationary: Any = generate  # a generator written before the keyword, as an untyped component would pass it
    with pytest.raises(ContractError, match="generate must accept the keyword change_at_ms"):
        replace(fraud, generate=stationary).validate()
    assert replace(fraud, generate=lambda *args, **kwargs: iter(())).validate()  # a **kwargs generator accepts it


@dataclass(frozen=True)
class Case:
    name: str
    n_events: int
    params: dict[str, Any]


CASES = (
    Case(
        "fraud", 30_000, {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 0.01}
    ),
    Case(
        "demand",
        30_000,
        {"learning_rate": 0.05, "max_leaf_nodes": 8, "min_samples_leaf": 100, "l2_regularization": 0.1},
    ),
    Case(
        "delivery",
        20_000,
        {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 40, "l2_regularization": 0.1},
    ),
)
MARGIN = 5
"""How many of the metric's tolerances (its holdout noise) the degradation and the retrained model's gain exceed."""


@dataclass(frozen=True)
class Scores:
    champion_before: float
    """The model trained before the change, on the newest quarter of its own period."""
    champion_after: float
    """The same model on the newest 40% of the rows after the change."""
    retrained_after: float
    """A model trained on the older 60% after the change, on the same rows."""


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_champion_from_before_the_change_degrades_and_a_retrained_model_wins(case: Case) -> None:
    component = load(case.name)
    metric = component.model.metric
    scores = regime_scores(component, case.n_events, 7, case.params)
    sign = 1.0 if metric.direction == "max" else -1.0  # positive: better
    bar = MARGIN * metric.tolerance
    assert sign * (scores.champion_before - scores.champion_after) > bar, scores
    assert sign * (scores.retrained_after - scores.champion_after) > bar, scores


def regime_scores(component: Component, n_events: int, seed: int, params: dict[str, Any]) -> Scores:
    """The three scores of a stream whose regime changes halfway (its event time, on a whole minute)."""
    change = _middle(component, list(component.generate(n_events, START_MS, seed)))
    frame = training_frame(component, list(component.generate(n_events, START_MS, seed, change_at_ms=change)))
    at = frame[EVENT_TIMESTAMP]
    cut = pd.Timestamp(change, unit="ms", tz="UTC")
    before, after = frame[at < cut], frame[at >= cut]
    own_train, own_test = _split(before, 0.75)
    new_train, new_test = _split(after, 0.6)
    champion, retrained = _fit(component, own_train, params), _fit(component, new_train, params)
    return Scores(
        _score(component, champion, own_test),
        _score(component, champion, new_test),
        _score(component, retrained, new_test),
    )


def _middle(component: Component, events: list[dict[str, Any]]) -> int:
    at = int(events[len(events) // 2][component.streaming.events.event_time])
    return at - at % 60_000


def _split(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * share)
    return frame.iloc[:cut], frame.iloc[cut:]


def _fit(component: Component, rows: pd.DataFrame, params: dict[str, Any]) -> Any:
    model = component.model
    *_, fitted = model.fit(params, model.prepare(rows), encode_target(model, rows[model.target].to_numpy()), 0)
    return fitted


def _score(component: Component, fitted: Any, rows: pd.DataFrame) -> float:
    model = component.model
    y = encode_target(model, rows[model.target].to_numpy())
    return float(model.metric.score(y, model.predict(fitted, model.prepare(rows))))


def _assert_labels_keep_their_feedback_rules(component: Component, events: list[dict[str, Any]]) -> None:
    """Each label event follows the first other event naming its key, within the declared delay."""
    feedback, schema = component.streaming.feedback, component.streaming.events
    assert feedback is not None and schema.kind is not None
    first: dict[str, int] = {}
    for event in events:
        if event[schema.kind] != feedback.kind and feedback.key in event:
            first.setdefault(event[feedback.key], event[schema.event_time])
    labels = [e for e in events if e[schema.kind] == feedback.kind]
    assert labels and len({e[feedback.key] for e in labels}) == len(labels), "one label per key"
    for label in labels:
        if label[feedback.key] in first:  # a demand slot without orders is named by no order
            delay = label[schema.event_time] - first[label[feedback.key]]
            assert 0 <= delay <= feedback.max_delay_s * 1000, label
