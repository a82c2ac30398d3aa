"""Embedded mode's traffic backend moves slots only through ``EmbeddedServing``'s public methods: a canary starts
in the other slot and gets its weight, a promotion weights it fully, records it as stable and stops the old
server, a rollback weights the stable slot fully and stops the canary. No servers run here: the supervisor and
HAProxy's runtime API are stood in for (tests/local/test_serving.py runs the real ones)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from contract.registry import load
from local.model_serving import EmbeddedBackend, EmbeddedServing


class Daemon:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, program: str) -> None:
        self.stopped.append(program)


@pytest.fixture()
def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedServing:
    services: Any = SimpleNamespace(settings=SimpleNamespace(state_dir=tmp_path), daemon=Daemon())
    serving = EmbeddedServing(services, load("fraud"))
    weights: dict[str, int] = {}
    monkeypatch.setattr(serving, "set_weights", weights.update)
    monkeypatch.setattr(serving, "weights", lambda: dict(weights))

    def start_server(slot: str, version: str, progress: Any = print) -> None:  # the slot's bookkeeping only
        slots = serving.slots()
        slots[slot]["version"] = version
        serving._save_slots(slots)

    monkeypatch.setattr(serving, "start_server", start_server)
    serving.start_server("a", "1")
    serving.set_weights({"a": 100, "b": 0})
    return serving


def test_a_promoted_canary_becomes_the_stable_slot(serving: EmbeddedServing) -> None:
    backend = EmbeddedBackend(serving)
    backend.start_canary("2", 10)
    assert serving.weights() == {"a": 90, "b": 10}
    backend.promote()
    assert serving.weights() == {"a": 0, "b": 100}
    assert serving.slots()["stable"] == "b"
    assert backend.stable_version() == "2"
    assert serving.services.daemon.stopped == ["serve-fraud-a"]


def test_a_rolled_back_canary_stops_and_the_stable_slot_stays(serving: EmbeddedServing) -> None:
    backend = EmbeddedBackend(serving)
    backend.start_canary("2", 25)
    backend.rollback()
    assert serving.weights() == {"a": 100, "b": 0}
    assert serving.slots()["stable"] == "a"
    assert backend.stable_version() == "1"
    assert serving.services.daemon.stopped == ["serve-fraud-b"]
