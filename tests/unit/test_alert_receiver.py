"""The alert receiver, run as the cluster runs it: the file alone under an isolated interpreter (no project import,
no site packages), taking an Alertmanager webhook payload, recording it and answering it, refusing a bad one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.paths import REPO_ROOT
from local.service_spec import free_port
from monitoring import alert_receiver

pytestmark = pytest.mark.unit

PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "mlstack",
    "groupLabels": {"alertname": "FeatureDrift"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "FeatureDrift", "component": "fraud", "version": "3", "feature": "amount"},
            "annotations": {"summary": "fraud v3: feature amount drifted, PSI 0.35"},
            "startsAt": "2026-01-01T00:00:00Z",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "ServingErrorRateHigh", "component": "fraud", "version": "3"},
            "annotations": {},
        },
    ],
}


def _call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, log = free_port(), tmp_path / "alerts.jsonl"
    script = REPO_ROOT / "monitoring" / "alert_receiver.py"
    argv = [sys.executable, "-I", "-S", str(script), "--port", str(port), "--log", str(log)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _call(f"{base}/-/healthy")[0] == 200:
                    break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        process.wait(10)


def test_it_records_each_alert_and_answers_them_filtered(receiver: tuple[str, Path]) -> None:
    base, log = receiver
    assert _call(f"{base}{alert_receiver.WEBHOOK_PATH}") == (200, [])
    assert _call(f"{base}/alerts", PAYLOAD) == (200, {"recorded": 2})
    status, recorded = _call(f"{base}/alerts")
    assert status == 200
    assert [r["labels"]["alertname"] for r in recorded] == ["FeatureDrift", "ServingErrorRateHigh"]
    assert recorded[0]["receiver"] == "mlstack" and recorded[0]["received_at"].endswith("Z")
    assert recorded[0]["annotations"]["summary"] == "fraud v3: feature amount drifted, PSI 0.35"
    assert [r["labels"]["alertname"] for r in _call(f"{base}/alerts?status=resolved")[1]] == ["ServingErrorRateHigh"]
    assert [r["status"] for r in _call(f"{base}/alerts?alertname=FeatureDrift")[1]] == ["firing"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == recorded


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "Expecting property name"),
        ({"alerts": "many"}, 'JSON object with an "alerts" list'),
        ({"alerts": [{"status": "firing"}]}, 'alert 0 has no "labels" object'),
    ],
)
def test_a_bad_payload_is_refused_naming_the_problem(receiver: tuple[str, Path], body: Any, problem: str) -> None:
    base, log = receiver
    status, answer = _call(f"{base}/alerts", body)
    assert status == 400 and problem in answer["error"]
    assert not log.exists()
    assert _call(f"{base}/elsewhere", PAYLOAD)[0] == 404
