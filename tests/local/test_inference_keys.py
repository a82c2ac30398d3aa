"""Inference keys, for real: embedded mode's HAProxy (Debian's) in front of a real model server refuses a request
without a key (401) or with a wrong or revoked one (403) before any model server sees it, and passes a consumer's key
(200); created and revoked keys apply to the running proxy; the traffic generator and the serving benchmark's load
generator pass their key. The cluster's key check (``serving/auth_gateway.py``, the very file the cluster runs)
answers the same over HTTP from a key file."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.support import load_generator
from contract.registry import load
from local import inference_keys
from local.model_serving import EmbeddedServing
from local.services import EmbeddedServices
from local.settings import EmbeddedSettings
from local.streaming import EmbeddedStreaming
from local.traffic import TrafficGenerator
from serving import auth_gateway, metrics
from tests.local.served_models import register, request_rows

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is missing (make setup installs it)")


def post(url: str, body: bytes, key: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def served_requests(serving: EmbeddedServing) -> float:
    """Prediction requests the stable model server counted itself (``mlstack_requests_total``)."""
    slots = serving.slots()
    port = slots[slots["stable"]]["port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == metrics.REQUESTS_TOTAL
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    settings = EmbeddedSettings.on_free_ports(tmp_path_factory.mktemp("keys") / "state")
    services = EmbeddedServices(settings, ["redis", "mlflow"])
    services.up(progress=lambda line: print(f"[services] {line}"))
    try:
        mlflow.set_tracking_uri(settings.mlflow_url)
        yield services
    finally:
        services.down(progress=lambda line: print(f"[services] {line}"))


def test_haproxy_checks_keys_before_the_model_server(services: EmbeddedServices) -> None:
    fraud = load("fraud")
    settings = services.settings
    assert not inference_keys.enabled(settings), "the key check is off until a key is created"
    key, _ = inference_keys.create(settings, "checkout")
    EmbeddedStreaming(services, fraud).feature_store()  # the Feast repo the server reads (no features pushed: NaN)
    serving = EmbeddedServing(services, fraud)
    serving.serve(register(fraud, seed=11))
    try:
        assert serving.checks_keys()
        url = f"{serving.endpoint}/v1/models/fraud:predict"
        rows = request_rows(fraud, 20, seed=12)
        body = json.dumps({"instances": [rows[0]]}).encode()

        before = served_requests(serving)
        status, text = post(url, body, None)
        assert (status, "missing key" in text) == (401, True)
        assert post(url, body, "mlsk_not-a-key")[0] == 403
        assert post(url, body, key[:-1])[0] == 403
        assert served_requests(serving) == before, "a refused request reached the model server"

        status, text = post(url, body, key)
        assert status == 200 and '"predictions"' in text
        assert served_requests(serving) == before + 1

        # Keys created and revoked while the proxy runs apply from the next request on.
        second, _ = inference_keys.create(settings, "reports")
        serving.reload_keys()
        assert post(url, body, second)[0] == 200
        inference_keys.revoke(settings, "checkout")
        serving.reload_keys()
        assert post(url, body, key)[0] == 403
        assert post(url, body, second)[0] == 200

        # The canary's traffic generator passes its key; without one every request is refused.
        with TrafficGenerator(url, rows, rate=40, threads=2, headers={"Authorization": f"Bearer {second}"}) as sent:
            while len(sent.log.responses) < 20:
                time.sleep(0.1)
        assert {r.status for r in sent.log.responses} == {200}
        with TrafficGenerator(url, rows, rate=40, threads=2) as unkeyed:
            while len(unkeyed.log.responses) < 10:
                time.sleep(0.1)
        assert {r.status for r in unkeyed.log.responses} == {401}
        # The serving benchmark's load generator too (its health checks through HAProxy included): every one served.
        keyed = {"Authorization": f"Bearer {second}"}
        measured = load_generator.measure("via HAProxy", url, [body], "open", 20, 0.5, None, print, keyed)
        assert (measured.sent, measured.ok) == (10, 10)

        # Off again: the proxy restarts without the check at the next serve.
        inference_keys.disable(settings)
        serving.serve(serving.slots()[serving.slots()["stable"]]["version"])
        assert not serving.checks_keys()
        assert post(url, body, None)[0] == 200
    finally:
        serving.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_cluster_key_check_answers_the_same(tmp_path: Path) -> None:
    """The file the cluster mounts, run as a process under ``python -I`` (nothing of the project importable)."""
    key = auth_gateway.new_key()
    keys = tmp_path / "keys.map"
    keys.write_text(f"{auth_gateway.key_hash(key)} checkout\n")
    port, health = free_port(), free_port()
    script = Path(auth_gateway.__file__)
    command = [sys.executable, "-I", str(script), "--port", str(port), "--health-port", str(health)]
    process = subprocess.Popen([*command, "--keys-file", str(keys)], cwd=tmp_path)
    try:
        while True:  # ready once the keys were read; the process dying ends the wait with its exit code
            assert process.poll() is None, f"the key check exited with {process.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/models/fraud:predict"
        body = b'{"instances": []}'
        status, _ = post(url, body, None)
        assert status == 401
        assert post(url, body, "mlsk_wrong")[0] == 403
        assert post(url, body, key)[0] == 200
        # Every path is checked on this port, the health path too: only the other port answers it unchecked.
        assert post(f"http://127.0.0.1:{port}/healthz", b"", None)[0] == 401
        keys.write_text("")  # revoked: the check re-reads the file
        while post(url, body, key)[0] != 403:
            assert process.poll() is None
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(10)
