"""The platform's own traffic (the demo's canary traffic and live scoring) calls with a key of its own when the
embedded key check is on, and with none when it is off."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import inference_keys
from local.settings import EmbeddedSettings
from serving.auth_gateway import key_hash

pytestmark = pytest.mark.unit


def test_no_header_while_the_check_is_off_and_a_fresh_own_key_once_it_is_on(tmp_path: Path) -> None:
    settings = EmbeddedSettings(tmp_path)
    assert inference_keys.own_headers(settings) == {}
    assert not inference_keys.enabled(settings), "asking for a header does not turn the check on"
    inference_keys.create(settings, "checkout-service")
    first = inference_keys.own_headers(settings)
    second = inference_keys.own_headers(settings)
    key = second["Authorization"].removeprefix("Bearer ")
    assert first != second, "a new key each run"
    consumers = inference_keys.consumers(settings)
    assert consumers[key_hash(key)] == inference_keys.OWN_CONSUMER
    assert sorted(consumers.values()) == ["checkout-service", "mlstack-demo"], "the earlier own key is replaced"
