"""The embedded stream's placement of a generator's events (local.synthetic_stream.generated_at): a regime change
given to the placed stream changes only the events from its time on, at the absolute time asked for."""

from __future__ import annotations

import pytest

from contract.registry import load
from local.synthetic_stream import generated_at

AT_MS = 1_800_000_000_000  # where the backlog's last event falls (a whole minute, as "now" may be)


@pytest.mark.parametrize("name", ["fraud", "demand", "delivery"])
def test_a_change_given_to_the_placed_stream_changes_only_what_follows_it(name: str) -> None:
    component = load(name)
    time_field = component.streaming.events.event_time
    still = generated_at(component, 6000, 7, 2999, AT_MS)
    change_at = AT_MS + 120_000
    changed = generated_at(component, 6000, 7, 2999, AT_MS, change_at_ms=change_at)
    assert still[2999][time_field] <= AT_MS < still[2999][time_field] + 60_000, "the backlog ends at the time asked"
    before = [e for e in still if e[time_field] < change_at]
    assert [e for e in changed if e[time_field] < change_at] == before, "the world before the change is the same"
    assert len(before) < len(still), "the change falls inside the stream"
    assert [e for e in changed if e[time_field] >= change_at] != [e for e in still if e[time_field] >= change_at]
