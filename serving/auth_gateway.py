"""``python -m serving.auth_gateway``: the inference gateway's key check, as Kourier's external authorization
service (HTTP mode). Envoy asks it about every request before routing it to a model server; a 200 lets the request
through, anything else is returned to the caller as is, so the model never sees a refused request.

- A caller sends ``Authorization: Bearer <key>`` (Envoy's HTTP ext_authz always forwards that header).
- No bearer key: 401 with ``WWW-Authenticate: Bearer``. A key that is not a consumer's: 403. A consumer's key: 200.
- Keys are never stored: a consumer's key is kept as its SHA-256 (``key_hash``), in one of two sources:
  ``--namespace``: the Secrets labelled ``mlstack.dev/inference-key`` there (``data.sha256``, the consumer in the
  ``mlstack.dev/consumer`` label), listed and then watched through the Kubernetes API with the pod's service account
  (a Role that may get/list/watch Secrets of that one namespace, which holds nothing else);
  ``--keys-file``: lines ``<sha256> <consumer>``, the map file embedded mode's HAProxy reads, re-read when it changes.
- ``GET /healthz`` on ``--health-port`` (never on the checked port, where every path is a request to check): 200 once
  the keys were read.

Standard library only, one file, importing nothing of the project: the cluster runs this very file from a ConfigMap
in a stock Python image (``infra/services/inference_auth.py``), as the alert receiver does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEY_LABEL = "mlstack.dev/inference-key"
"""Label of every consumer key Secret (value ``"true"``); the service reads only these."""
CONSUMER_LABEL = "mlstack.dev/consumer"
"""Label naming the consumer a key Secret belongs to."""
HASH_FIELD = "sha256"
"""The Secret's data field holding the key's SHA-256 (hex)."""
KEY_PREFIX = "mlsk_"
"""Keys start with this, so a leaked one is recognisable (secret scanners match on such prefixes)."""
CONSUMER = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
"""A consumer name: a DNS label short enough to prefix the Secret's name."""
MAX_BODY = 64 * 2**10
"""Envoy sends up to 8 KiB of the request's body (net-kourier's default); it is read and ignored."""
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API = "https://kubernetes.default.svc"


def new_key() -> str:
    """A fresh key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, lower-case hex (HAProxy's ``sha2(256),hex,lower`` gives the same)."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_consumer(name: str) -> str:
    """``name`` if it is a valid consumer name; ``ValueError`` naming the rule otherwise."""
    if not CONSUMER.match(name):
        raise ValueError(f"consumer {name!r}: expected a lower-case DNS label of at most 42 characters (a-z, 0-9, -)")
    return name


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header; None when there is no such header."""
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def decide(authorization: str | None, hashes: Mapping[str, str]) -> tuple[HTTPStatus, str]:
    """(status, consumer or reason) for a request's Authorization header against ``hashes`` (hash -> consumer)."""
    key = bearer(authorization)
    if key is None:
        return HTTPStatus.UNAUTHORIZED, "send your key as 'Authorization: Bearer <key>'"
    digest = key_hash(key)
    for known, consumer in hashes.items():
        if hmac.compare_digest(known, digest):
            return HTTPStatus.OK, consumer
    return HTTPStatus.FORBIDDEN, "unknown or revoked key"


def parse_keys_file(text: str) -> dict[str, str]:
    """A map file's ``<sha256> <consumer>`` lines (blank lines and ``#`` comments skipped) as hash -> consumer."""
    hashes = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            raise ValueError(f"line {number}: expected '<sha256 hex> <consumer>', got {line!r}")
        hashes[parts[0]] = parts[1]
    return hashes


class KeyStore:
    """The known key hashes, replaced whole by a source thread and read by request threads."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        self.loaded = threading.Event()

    def replace(self, hashes: Mapping[str, str]) -> None:
        with self._lock:
            self._hashes = dict(hashes)
        self.loaded.set()

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._hashes)


def follow_file(path: Path, store: KeyStore, interval_s: float = 1.0) -> None:
    """Keep ``store`` equal to the map file at ``path`` (missing: no keys, every request refused)."""
    seen: tuple[float, int] | None = None
    while True:
        try:
            stat = path.stat()
            current: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            current = None
        if current != seen or not store.loaded.is_set():
            try:
                store.replace(parse_keys_file(path.read_text()) if current else {})
                seen = current
            except ValueError as error:  # a file being rewritten: keep the last good keys, read it again
                print(f"{path}: {error}", flush=True)
        time.sleep(interval_s)


def secret_hashes(items: list[dict[str, Any]]) -> dict[str, str]:
    """hash -> consumer of the labelled Secrets in a list answer (a Secret without a valid hash is skipped)."""
    hashes = {}
    for item in items:
        encoded = (item.get("data") or {}).get(HASH_FIELD, "")
        digest = base64.b64decode(encoded).decode(errors="replace").strip() if encoded else ""
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            hashes[digest] = item["metadata"].get("labels", {}).get(CONSUMER_LABEL, item["metadata"]["name"])
    return hashes


def follow_secrets(namespace: str, store: KeyStore, resync_s: float = 300.0) -> None:
    """Keep ``store`` equal to the key Secrets of ``namespace``: list, then watch from the list's resourceVersion;
    on any error or at the resync time, list again (a watch can end at any time)."""
    token_path, ca = SERVICE_ACCOUNT / "token", str(SERVICE_ACCOUNT / "ca.crt")
    context = ssl.create_default_context(cafile=ca)
    selector = urllib.parse.quote(f"{KEY_LABEL}=true")
    base = f"{API}/api/v1/namespaces/{namespace}/secrets?labelSelector={selector}"

    def get(url: str, timeout: float) -> Any:
        # The token is re-read every call: the kubelet rotates projected tokens.
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token_path.read_text().strip()}"})
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    while True:
        try:
            with get(base, 30) as answer:
                listed = json.load(answer)
            secrets_by_name = {s["metadata"]["name"]: s for s in listed.get("items", [])}
            store.replace(secret_hashes(list(secrets_by_name.values())))
            version = listed["metadata"]["resourceVersion"]
            watch = f"{base}&watch=1&resourceVersion={version}&timeoutSeconds={int(resync_s)}"
            with get(watch, resync_s + 30) as stream:
                for line in stream:
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        break
                    secret = event["object"]
                    if event["type"] == "DELETED":
                        secrets_by_name.pop(secret["metadata"]["name"], None)
                    else:
                        secrets_by_name[secret["metadata"]["name"]] = secret
                    store.replace(secret_hashes(list(secrets_by_name.values())))
        except (OSError, ValueError, KeyError) as error:
            print(f"reading key Secrets of {namespace}: {error}; listing again in 2 s", flush=True)
            time.sleep(2)


def check_handler(store: KeyStore) -> type[BaseHTTPRequestHandler]:
    class Check(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # Envoy keeps its connections to the service open

        def _check(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if 0 < length <= MAX_BODY:
                self.rfile.read(length)
            status, detail = decide(self.headers.get("Authorization"), store.snapshot())
            body = b"" if status == HTTPStatus.OK else json.dumps({"error": detail}).encode()
            self.send_response(status)
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Bearer realm="mlstack inference"')
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if length > MAX_BODY:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only, or the connection's next reply breaks
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _check

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would be the gateway's whole traffic

    return Check


def health_handler(store: KeyStore) -> type[BaseHTTPRequestHandler]:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ready = store.loaded.is_set() and self.path == "/healthz"
            self.send_response(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Health


def servers(host: str, port: int, health_port: int, store: KeyStore) -> tuple[ThreadingHTTPServer, ThreadingHTTPServer]:
    """The check server and the health server, bound and ready to ``serve_forever``."""
    return ThreadingHTTPServer((host, port), check_handler(store)), ThreadingHTTPServer(
        (host, health_port), health_handler(store)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--health-port", type=int, default=8081)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--namespace", help="read the labelled key Secrets of this namespace")
    source.add_argument("--keys-file", type=Path, help="read '<sha256> <consumer>' lines from this file")
    args = parser.parse_args(argv)
    store = KeyStore()
    if args.namespace:
        follow = threading.Thread(target=follow_secrets, args=(args.namespace, store), daemon=True)
    else:
        follow = threading.Thread(target=follow_file, args=(args.keys_file, store), daemon=True)
    follow.start()
    check, health = servers(args.host, args.port, args.health_port, store)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    print(f"key check on http://{args.host}:{args.port}, health on :{args.health_port}/healthz", flush=True)
    check.serve_forever()


if __name__ == "__main__":
    main()
