"""Part files of the offline store through fsspec: a local folder (embedded) and an object-store URL (the
cluster's ``s3://``, here fsspec's in-memory file system, which takes the same code path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.features.parts import read_parts, write_part
from pipelines.streaming.event_archive import events_path, read_events


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "offline")
    import fsspec

    memory = fsspec.filesystem("memory")
    if memory.exists("/mlstack-features"):
        memory.rm("/mlstack-features", recursive=True)
    return "memory://mlstack-features/fraud"


def test_parts_round_trip_in_order(root: str) -> None:
    assert read_parts(f"{root}/card_10m") == []
    first = pd.DataFrame({"card_id": [1, 2], "event_count": [3, 4]})
    second = pd.DataFrame({"card_id": [3], "event_count": [5]})
    written = [write_part(first, f"{root}/card_10m"), write_part(second, f"{root}/card_10m")]
    assert all("/card_10m/part-" in path and "s3:/" not in path for path in written)
    parts = read_parts(f"{root}/card_10m")
    assert [len(p) for p in parts] == [2, 1]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), pd.concat([first, second], ignore_index=True))


def test_archived_events_are_read_back_once(root: str) -> None:
    events = pd.DataFrame({"card_id": [1, 2], "amount": [9.5, 3.0]})
    write_part(events, events_path(root))
    write_part(events, events_path(root))  # a replay after a crash writes the same events again
    pd.testing.assert_frame_equal(read_events(root), events)
    if root.startswith("memory://"):
        assert not Path("memory:").exists(), "an object-store URL never becomes a local folder"
