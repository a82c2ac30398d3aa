"""Generated passwords: strong and fresh on create, kept on update, replaced only when their length changes."""

from __future__ import annotations

import pytest

from infra.services.passwords import ALPHABET, GeneratedPassword, PasswordProvider


def test_create_generates_distinct_passwords_of_the_length_from_the_alphabet() -> None:
    provider = PasswordProvider()
    first = provider.create({"length": 32, "result": None})
    second = provider.create({"length": 32, "result": None})
    assert len(first.outs["result"]) == 32 and set(first.outs["result"]) <= set(ALPHABET)
    assert first.outs["result"] != second.outs["result"] and first.id != second.id


def test_diff_keeps_the_password_unless_its_length_changes() -> None:
    provider = PasswordProvider()
    old = {"length": 32, "result": "x" * 32}
    assert not provider.diff("id", old, {"length": 32, "result": None}).changes
    changed = provider.diff("id", old, {"length": 40, "result": None})
    assert changed.changes and changed.replaces == ["length"]


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 16"):
        GeneratedPassword("weak", 8)
