"""Unit checks of the fraud component's delayed labels: transactions never carry their verdict, each gets
exactly one resolution within the declared delay (a chargeback for fraud, a confirmation otherwise), requests are
built from transactions only, and the training set takes each verdict as known by its cutoff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from components.fraud.events import CHARGEBACK_S, CONFIRMATION_S
from contract.model import EVENT_TIMESTAMP
from contract.registry import load
from local.traffic import instances, request_kinds
from pipelines.features.parts import write_part
from pipelines.streaming.event_archive import NULLABLE, events_path
from pipelines.training import dataset

START_MS = 1_790_000_000_000
TYPES = {"string": str, "long": int, "double": float, "boolean": bool}


def test_fraud_declares_its_verdict_as_a_label_arriving_as_its_own_event() -> None:
    fraud = load("fraud")
    streaming, model = fraud.streaming, fraud.model
    assert streaming.events.label is None and streaming.feedback is not None
    assert (streaming.feedback.kind, streaming.feedback.key, streaming.feedback.label) == (
        "resolution",
        "transaction_id",
        "is_fraud",
    )
    assert streaming.feedback.max_delay_s == max(CHARGEBACK_S[1], CONFIRMATION_S[1])
    assert "transaction_id" in model.request_fields and "is_fraud" not in model.request_fields
    assert {g.name: g.kinds for g in streaming.groups} == {
        "card_10m": ("transaction",),
        "card_1h": ("transaction",),
        "merchant_1h": ("transaction",),
    }


def test_fraud_generator_gives_every_transaction_one_resolution_within_the_delay() -> None:
    fraud = load("fraud")
    schema = fraud.streaming.events
    events = list(fraud.generate(12_000, START_MS, 3))
    assert events == list(fraud.generate(12_000, START_MS, 3)) and len(events) == 12_000
    times = [e["event_time"] for e in events]
    assert times == sorted(times) and times[0] > START_MS
    for event in events:
        carried = schema.carried(event["kind"])
        assert set(event) == {f.name for f in carried}, event  # a transaction never carries is_fraud
        for field in carried:
            assert isinstance(event[field.name], TYPES[field.type]), (field.name, event)
    transactions = {e["transaction_id"]: e for e in events if e["kind"] == "transaction"}
    resolutions = [e for e in events if e["kind"] == "resolution"]
    assert len({r["transaction_id"] for r in resolutions}) == len(resolutions), "one resolution per transaction"
    bounds = {"chargeback": (1, CHARGEBACK_S), "confirmation": (0, CONFIRMATION_S)}
    for resolution in resolutions:
        transaction = transactions[resolution["transaction_id"]]
        label, (low, high) = bounds[resolution["resolved_as"]]
        assert resolution["is_fraud"] == label and resolution["card_id"] == transaction["card_id"]
        assert low * 1000 <= resolution["event_time"] - transaction["event_time"] <= high * 1000
    # Every transaction older than the longest delay at the last event has its resolution in the stream.
    settled = [t for t in transactions.values() if t["event_time"] <= times[-1] - CHARGEBACK_S[1] * 1000]
    assert {t["transaction_id"] for t in settled} <= {r["transaction_id"] for r in resolutions}
    frauds = [r for r in resolutions if r["is_fraud"]]
    assert 0.005 < len(frauds) / len(resolutions) < 0.1
    # Fraud is larger than the usual spend: real signal for a model to learn.
    spent = [transactions[r["transaction_id"]]["amount"] for r in resolutions]
    mean_fraud = sum(transactions[r["transaction_id"]]["amount"] for r in frauds) / len(frauds)
    assert mean_fraud > 1.5 * sum(spent) / len(spent)
    # Ids say nothing about the verdict.
    assert {t.split("-")[0] for t in transactions} == {"t3"}


def test_fraud_requests_are_transactions_and_never_carry_the_verdict() -> None:
    fraud = load("fraud")
    events = list(fraud.generate(2_000, START_MS, 3))
    assert request_kinds(fraud) == ("transaction",)
    rows = instances(fraud, events)
    assert [r["transaction_id"] for r in rows] == [e["transaction_id"] for e in events if e["kind"] == "transaction"]
    assert all(set(r) == {"card_id", "merchant_id", "transaction_id", "amount", "channel"} for r in rows)


def test_fraud_examples_are_transactions_with_their_id_and_no_verdict() -> None:
    fraud = load("fraud")
    events = pd.DataFrame(fraud.generate(2_000, START_MS, 3))
    rows = fraud.model.examples(events)
    assert list(rows.columns) == ["transaction_id", "card_id", "merchant_id", "amount", "channel", EVENT_TIMESTAMP]
    assert len(rows) == (events["kind"] == "transaction").sum()
    with pytest.raises(ValueError, match="fraud events carry a 'kind' field"):
        fraud.model.examples(events.drop(columns="kind"))


def _archive(root: Path, events: list[dict[str, Any]]) -> None:
    """Events as the archive writes them (every kind in one table, nullable column types)."""
    fields = load("fraud").streaming.events.fields
    frame = pd.DataFrame(events, columns=[f.name for f in fields]).astype({f.name: NULLABLE[f.type] for f in fields})
    write_part(frame, events_path(str(root)))


def test_the_fraud_training_set_takes_the_verdicts_known_by_its_cutoff(tmp_path: Path) -> None:
    fraud = load("fraud")
    events = list(fraud.generate(12_000, START_MS, 5))
    _archive(tmp_path, events)
    newest = events[-1]["event_time"]
    end_ms = newest - 5 * 60_000  # a window ending mid-stream, as the demo's first training does
    end = pd.Timestamp(end_ms, unit="ms", tz="UTC")
    rows, unlabelled = dataset.labelled_examples(fraud, str(tmp_path), dataset.DataWindow(end=end))
    assert fraud.streaming.feedback is not None
    max_delay_ms = fraud.streaming.feedback.max_delay_s * 1000
    verdicts = {e["transaction_id"]: e["is_fraud"] for e in events if e["kind"] == "resolution"}
    settled = [e for e in events if e["kind"] == "transaction" and e["event_time"] <= end_ms - max_delay_ms]
    young = [e for e in events if e["kind"] == "transaction" and end_ms - max_delay_ms < e["event_time"] < end_ms]
    # Every transaction older than the delay at the cutoff is resolved by then, and has exactly its verdict.
    assert list(rows["transaction_id"]) == [e["transaction_id"] for e in settled]
    assert list(rows["is_fraud"]) == [verdicts[e["transaction_id"]] for e in settled]
    assert unlabelled == len(young) and young, "the younger ones wait for their verdict, fraud or not"
    assert rows["is_fraud"].sum() > 10
