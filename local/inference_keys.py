"""Embedded mode's inference keys: the map file HAProxy checks callers' keys against.

Off by default (a laptop's endpoints listen on 127.0.0.1 only). The check is on once the file exists: creating the
first key creates it, and a proxy started afterwards (``mlstack serve start``) refuses requests without a consumer's
key; revoking every key leaves it on, refusing everything; ``disable`` deletes the file. Each line is
``<sha256 of the key> <consumer>`` (``serving.auth_gateway.key_hash``: the key itself is shown once and never
stored), the same hashes the cluster's key Secrets hold, so both check the same kind of key.
"""

from __future__ import annotations

from pathlib import Path

from local.settings import EmbeddedSettings
from serving.auth_gateway import check_consumer, key_hash, new_key, parse_keys_file


def keys_path(settings: EmbeddedSettings) -> Path:
    return settings.state_dir / "serving" / "inference-keys.map"


def enabled(settings: EmbeddedSettings) -> bool:
    return keys_path(settings).exists()


def consumers(settings: EmbeddedSettings) -> dict[str, str]:
    """hash -> consumer of the keys in force (empty when the check is off or every key was revoked)."""
    path = keys_path(settings)
    return parse_keys_file(path.read_text()) if path.exists() else {}


def _write(settings: EmbeddedSettings, hashes: dict[str, str]) -> None:
    path = keys_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{digest} {consumer}\n" for digest, consumer in sorted(hashes.items(), key=lambda kv: kv[1]))
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.chmod(0o600)
    partial.replace(path)  # atomic: HAProxy and the key check never read half a file


def create(settings: EmbeddedSettings, consumer: str) -> tuple[str, str]:
    """A new key for ``consumer`` (replacing its earlier one), as (key, its hash); turns the check on.

    Raises:
        ValueError: ``consumer`` is not a valid consumer name.
    """
    check_consumer(consumer)
    key = new_key()
    hashes = {d: c for d, c in consumers(settings).items() if c != consumer}
    hashes[key_hash(key)] = consumer
    _write(settings, hashes)
    return key, key_hash(key)


def revoke(settings: EmbeddedSettings, consumer: str) -> list[str]:
    """Remove ``consumer``'s key; the hashes removed (empty when it had none). The check stays on."""
    hashes = consumers(settings)
    removed = [d for d, c in hashes.items() if c == consumer]
    if removed:
        _write(settings, {d: c for d, c in hashes.items() if c != consumer})
    return removed


def disable(settings: EmbeddedSettings) -> bool:
    """Turn the check off (every key goes); True when it was on. Applies at the next ``mlstack serve start``."""
    path = keys_path(settings)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


OWN_CONSUMER = "mlstack-demo"
"""The consumer the platform's own generated traffic calls as (the demo's canary traffic and live scoring)."""


def own_headers(settings: EmbeddedSettings) -> dict[str, str]:
    """The ``Authorization`` header for the platform's own traffic when the key check is on: a new key of
    ``OWN_CONSUMER`` (replacing its earlier one), which the proxy must then be given (``EmbeddedServing``
    ``reload_keys`` when it runs, or its next start); none when the check is off."""
    if not enabled(settings):
        return {}
    key, _ = create(settings, OWN_CONSUMER)
    return {"Authorization": f"Bearer {key}"}
