"""Live scoring: each live event of a kind a prediction is asked for becomes one V1 request with its own request
id, label events never do, and a full queue drops (and counts) instead of holding the live events back."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from contract.registry import load
from local import live_scoring
from local.live_scoring import LiveScorer

pytestmark = pytest.mark.unit


class Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Recorder.seen.append((self.headers.get("x-request-id", ""), body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: Any) -> None:
        pass


def test_request_kinds_are_scored_once_each_with_their_own_request_id() -> None:
    fraud = load("fraud")
    events = list(fraud.generate(2_000, 1_764_000_000_000, 3))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Recorder.seen = []
    try:
        scorer = LiveScorer(fraud, f"http://127.0.0.1:{server.server_port}/v1/models/fraud:predict").start()
        for event in events:
            scorer(event)
        counts = scorer.stop()
    finally:
        server.shutdown()
    transactions = [e for e in events if e["kind"] == "transaction"]
    assert 0 < len(transactions) < len(events), "the stream holds transactions and their resolutions"
    assert counts.sent == counts.ok == len(transactions) and counts.dropped == 0
    ids = [request_id for request_id, _ in Recorder.seen]
    assert len(set(ids)) == len(ids) == len(transactions) and all(ids)
    rows = [body["instances"][0] for _, body in Recorder.seen]
    assert sorted(r["transaction_id"] for r in rows) == sorted(e["transaction_id"] for e in transactions)
    assert all("is_fraud" not in r for r in rows), "a request never carries the label"


def test_a_full_queue_drops_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_scoring, "QUEUE_CAPACITY", 3)
    fraud = load("fraud")
    scorer = LiveScorer(fraud, "http://127.0.0.1:9/unreachable")  # not started: nothing takes from the queue
    transactions = [e for e in fraud.generate(50, 0, 1) if e["kind"] == "transaction"][:5]
    for event in transactions:
        scorer(event)
    assert scorer.counts.dropped == 2


def test_the_demo_summary_shows_the_counts_the_scorer_keeps(capsys: pytest.CaptureFixture[str]) -> None:
    """Both demos keep the scorer's counts as ``as_dict`` gives them (``make demo-drift`` once kept three of the four
    and its summary failed on the missing one, after half an hour's run)."""
    from cli import demo_cli
    from cli.demo_state import DemoResult

    counts = live_scoring.ScoringCounts(sent=9, ok=6, failed=2, dropped=1)
    demo_cli.print_summary(DemoResult(component="fraud", seed=1, champion_version="1", live_scoring=counts.as_dict()))
    assert "6 answered of 9 sent (2 failed, 1 dropped)" in capsys.readouterr().out
