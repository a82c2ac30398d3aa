"""A registered component reduced to a stream of one kind (every domain's labels arrive as events of their own):
no kind field, groups that count every event, no feedback. For the checks of what single-kind streams do."""

from __future__ import annotations

import dataclasses

from contract import Component


def one_kind(component: Component) -> Component:
    """``component`` with one kind of event: its kind field and kinds, its groups' kind filters and its feedback
    gone (not validated: its examples and target are left as they are)."""
    streaming = component.streaming
    return dataclasses.replace(
        component,
        streaming=dataclasses.replace(
            streaming,
            events=dataclasses.replace(streaming.events, kind=None, kinds=()),
            groups=tuple(dataclasses.replace(g, kinds=()) for g in streaming.groups),
            feedback=None,
        ),
    )
