"""Errors that the CLI prints as one line, without a traceback."""

from __future__ import annotations


class EmbeddedError(RuntimeError):
    """A problem the user can fix; the message says what happened and what to do."""
