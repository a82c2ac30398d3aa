"""Part files of the offline store through fsspec: a local folder (embedded) and an object-store URL (the
cluster's ``s3://``, here fsspec's in-memory file system, which takes the same code path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_a_part_still_being_written_is_never_read(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The streaming tests once read a 0-byte part the pusher had just opened: a reader listing the folder while a
    # part is written must see the parts before it, whole, and nothing of the one in progress.
    folder = f"{root}/card_10m"
    write_part(pd.DataFrame({"card_id": [1], "event_count": [2]}), folder)
    seen_while_writing: list[list[int]] = []
    to_parquet = pd.DataFrame.to_parquet

    def write_and_look(frame: pd.DataFrame, out: Any, **kwargs: Any) -> None:
        seen_while_writing.append([len(p) for p in read_parts(folder)])
        to_parquet(frame, out, **kwargs)
        seen_while_writing.append([len(p) for p in read_parts(folder)])

    monkeypatch.setattr(pd.DataFrame, "to_parquet", write_and_look)
    write_part(pd.DataFrame({"card_id": [3, 4], "event_count": [5, 6]}), folder)
    assert seen_while_writing == [[1], [1]]
    assert [len(p) for p in read_parts(folder)] == [1, 2]
