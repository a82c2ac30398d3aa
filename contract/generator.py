"""The synthetic event generator a component exports: its type, and the regime change it may be asked for."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, Protocol

Event = dict[str, Any]


class EventGenerator(Protocol):
    """``generate(n_events, start_ms, seed, *, change_at_ms=None)``: realistic synthetic events in event-time
    order, with real signal.

    ``change_at_ms`` is the event time of a regime change: from then on the world differs (a new fraud pattern, a
    demand wave, slower kitchens) so that a model trained before it degrades and one retrained after it wins; its
    labels follow the same feedback rules. ``None`` is a stationary world: exactly the stream the same seed gave
    before the keyword existed. A generator whose world cannot change accepts it and says so in its docstring.
    """

    def __call__(
        self, n_events: int, start_ms: int, seed: int = 0, /, *, change_at_ms: int | None = None
    ) -> Iterator[Event]: ...


def change_time(change_at_ms: object) -> int | None:
    """``change_at_ms`` checked: an epoch-millisecond int or None (a generator's regime change, or none)."""
    if change_at_ms is None or (isinstance(change_at_ms, int) and not isinstance(change_at_ms, bool)):
        return change_at_ms
    raise ValueError(f"change_at_ms must be an event time in epoch milliseconds (int) or None, not {change_at_ms!r}")


GENERATOR = "(n_events, start_ms, seed, *, change_at_ms=None) -> events"


def generator_problems(generate: object) -> Iterator[str]:
    """What is wrong with a component's ``generate``: not callable, or no ``change_at_ms`` keyword."""
    if not callable(generate):
        yield f"generate must be callable {GENERATOR}"
        return
    try:
        parameters = inspect.signature(generate).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature: trusted as declared
        return
    keywords = {p.name for p in parameters if p.kind in {p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD}}
    if "change_at_ms" not in keywords and not any(p.kind is p.VAR_KEYWORD for p in parameters):
        yield (
            f"generate must accept the keyword change_at_ms {GENERATOR}: the event time of a regime change, "
            "None for a stationary world (a generator whose world never changes accepts and ignores it)"
        )
