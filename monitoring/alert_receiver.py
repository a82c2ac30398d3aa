"""``python -m monitoring.alert_receiver``: the webhook Alertmanager notifies. It records every alert it is sent,
one JSON object per line, and answers what it recorded (the retraining trigger, ``monitoring.retrain_trigger``, is
notified beside it and acts).

- ``POST /alerts``: an Alertmanager webhook payload (version 4); each of its alerts is appended to the log with the
  time it was received and the group's receiver and status. A body that is not such a payload gets a 400 naming the
  problem (Alertmanager logs it and retries).
- ``GET /alerts``: the recorded alerts as a JSON array, oldest first; ``?status=firing`` (or ``resolved``) and
  ``?alertname=...`` filter them.
- ``GET /-/healthy``: 200 once it listens (the supervisor's and Kubernetes' probe).

Standard library only, one file, importing nothing of the project: the cluster runs this very file, mounted from a
ConfigMap into a stock Python image (``infra/services/prometheus.py``), so no image is built for it. It holds no
state but the log, so a restart loses nothing.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_PATH = "/alerts"
"""Where Alertmanager posts (``monitoring.alert_routing`` points it here) and where ``GET`` answers."""
MAX_BODY = 4 * 2**20
"""Alertmanager batches a group's alerts into one post; 4 MiB is thousands of them."""


class BadPayload(ValueError):
    pass


def alerts_of(payload: Any) -> list[dict[str, Any]]:
    """The alerts of a webhook payload, each with the receiver's record fields; ``BadPayload`` otherwise."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise BadPayload('an Alertmanager webhook payload is a JSON object with an "alerts" list')
    received = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    records = []
    for index, alert in enumerate(payload["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise BadPayload(f'alert {index} has no "labels" object')
        records.append({"received_at": received, "receiver": payload.get("receiver", ""), **alert})
    return records


class AlertLog:
    """The JSON-lines file of received alerts; appends are serialised (the server is threaded)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        with self.lock, self.path.open("a") as log:
            log.write(lines)

    def read(self, status: str = "", alertname: str = "") -> list[dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [
            record
            for record in records
            if (not status or record.get("status") == status)
            and (not alertname or record["labels"].get("alertname") == alertname)
        ]


def handler(log: AlertLog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: HTTPStatus, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/-/healthy":
                self._answer(HTTPStatus.OK, {"status": "ok"})
            elif url.path == WEBHOOK_PATH:
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                self._answer(HTTPStatus.OK, log.read(query.get("status", ""), query.get("alertname", "")))
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no {url.path}: GET {WEBHOOK_PATH} or /-/healthy"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != WEBHOOK_PATH:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"alerts are posted to {WEBHOOK_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY} bytes"})
                return
            try:
                records = alerts_of(json.loads(self.rfile.read(length) or b"null"))
            except (ValueError, UnicodeDecodeError) as error:  # BadPayload and JSON errors are ValueErrors
                self._answer(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            log.append(records)
            self._answer(HTTPStatus.OK, {"recorded": len(records)})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every alert is in the log file; a line per health probe would bury it

    return Handler


def server(host: str, port: int, log_path: Path) -> ThreadingHTTPServer:
    """The receiver, bound and ready to ``serve_forever``."""
    return ThreadingHTTPServer((host, port), handler(AlertLog(log_path)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9096)
    parser.add_argument("--log", type=Path, required=True, help="JSON-lines file the alerts are appended to")
    args = parser.parse_args(argv)
    receiver = server(args.host, args.port, args.log)
    print(f"alert receiver on http://{args.host}:{args.port}{WEBHOOK_PATH}, recording to {args.log}", flush=True)
    receiver.serve_forever()


if __name__ == "__main__":
    main()
