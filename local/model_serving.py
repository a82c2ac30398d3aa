"""Embedded mode's serving for one component: two model server slots (``a`` and ``b``) behind HAProxy, all
supervised. One slot is stable, the other holds a canary during a rollout. HAProxy's runtime API changes the
weights in place, so moving traffic never drops a request, and the split is HAProxy's, not simulated."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from contract import Component
from local import inference_keys
from local.alerting import remove_targets, write_targets
from local.errors import EmbeddedError
from local.paths import REPO_ROOT, main_module, socket_path
from local.server_metrics import scrape
from local.service_spec import free_port
from local.services import EmbeddedServices, Progress
from local.streaming import EmbeddedStreaming
from serving.rollout.analysis import Snapshot
from serving.rollout.backend import CanaryNotReady
from serving.rollout.prometheus import PrometheusReader

SERVER_START_TIMEOUT_S = 180
HAPROXY_CONFIG = """global
    stats socket {socket} mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A busy model server answers its health check late: generous checks, so load alone never marks it down.
    timeout check 5s
    # A refused connection (a server restarting) is retried on the other server, not returned as a 503.
    retries 2
    option redispatch 1
    option http-keep-alive

frontend model
    bind 127.0.0.1:{port}
{key_check}    default_backend servers

backend servers
    # Weighted round robin, changed in place through the runtime API: each server gets exactly its share.
    # (`balance random` draws two servers and takes the less loaded one, which favours a canary that fails fast.)
    balance roundrobin
    option httpchk GET /v2/health/ready
    http-response set-header x-mlstack-slot %s
    server a 127.0.0.1:{port_a} weight {weight_a} check inter 1s fall 3 rise 1
    server b 127.0.0.1:{port_b} weight {weight_b} check inter 1s fall 3 rise 1
"""
# The inference key check (local/inference_keys.py), when on: a request without a bearer key gets 401, one whose key's
# SHA-256 is not in the map 403, both answered here before any model server; a good key's consumer is passed on in
# x-mlstack-consumer and the key itself is not. The map is replaced in place through the runtime API.
KEY_CHECK = """    http-request return status 401 content-type text/plain \
        string "missing key: send Authorization: Bearer <key>" \
        hdr www-authenticate "Bearer realm=mlstack-inference" unless {{ http_auth_bearer -m found }}
    http-request set-var(txn.consumer) http_auth_bearer,sha2(256),hex,lower,map({keys})
    http-request return status 403 content-type text/plain string "unknown or revoked key" \
        unless {{ var(txn.consumer) -m found }}
    http-request del-header authorization
    http-request set-header x-mlstack-consumer %[var(txn.consumer)]
"""


class EmbeddedServing:
    def __init__(self, services: EmbeddedServices, component: Component) -> None:
        self.services = services
        self.component = component
        self.settings = services.settings
        self.root = self.settings.state_dir / "serving" / component.name
        self.slots_path = self.root / "slots.json"
        self.state_path = self.root / "rollout.json"
        self.proxy_program = f"proxy-{component.name}"

    # -- slots and ports ------------------------------------------------------------------------------------

    def slots(self) -> dict[str, Any]:
        """``{"stable": "a", "a": {"version": .., "port": ..}, "b": {..}, "proxy_port": ..}``."""
        if self.slots_path.exists():
            loaded: dict[str, Any] = json.loads(self.slots_path.read_text())
            return loaded
        self.root.mkdir(parents=True, exist_ok=True)
        slots = {
            "stable": "a",
            "a": {"version": None, "port": free_port()},
            "b": {"version": None, "port": free_port()},
            "proxy_port": free_port(),
        }
        self._save_slots(slots)
        return slots

    def _save_slots(self, slots: dict[str, Any]) -> None:
        self.slots_path.write_text(json.dumps(slots, indent=2))

    @property
    def endpoint(self) -> str:
        """Base URL of the component's model endpoint (V1 ``/v1/models/<name>:predict``, V2 ``/v2/...``)."""
        return f"http://127.0.0.1:{self.slots()['proxy_port']}"

    @staticmethod
    def canary_slot(stable: str) -> str:
        return "b" if stable == "a" else "a"

    def program(self, slot: str) -> str:
        return f"serve-{self.component.name}-{slot}"

    # -- processes ------------------------------------------------------------------------------------------

    def serve(self, version: str, progress: Progress = print) -> str:
        """Serve ``version`` as the stable model (restarting its slot if it serves another), behind the proxy."""
        slots = self.slots()
        stable = slots["stable"]
        if slots[stable]["version"] != version or not self.services.daemon.is_running(self.program(stable)):
            self.start_server(stable, version, progress)
            slots = self.slots()
        self._start_proxy(progress)
        self.set_weights({stable: 100, self.canary_slot(stable): 0})
        return self.endpoint

    def start_server(self, slot: str, version: str, progress: Progress = print, inference_log: bool = True) -> None:
        """(Re)start ``slot``'s model server on ``version`` and return once it is ready; its weight is unchanged.
        ``inference_log=False`` leaves the log off even with Kafka running (the serving benchmark's baseline)."""
        slots = self.slots()
        streaming = EmbeddedStreaming(self.services, self.component)
        port = slots[slot]["port"]
        command = main_module(
            "serving.server",
            "--component",
            self.component.name,
            "--mlflow-uri",
            self.settings.mlflow_url,
            "--feast-repo",
            str(streaming.repo),
            "--model-version",
            str(version),
            "--http_port",
            str(port),
            "--grpc_port",
            str(free_port()),
        )
        if inference_log and "kafka" in self.services.names:
            # The inference log: every scored row on <component>.predictions (created here if the component's
            # streaming has not created its topics yet; the broker creates none by itself).
            streaming.ensure_topics()
            command = (*command, "--kafka-bootstrap", self.settings.kafka_bootstrap)
        daemon = self.services.daemon
        daemon.stop(self.program(slot))
        daemon.register(self.program(slot), command, {"PYTHONPATH": str(REPO_ROOT)}, 20, REPO_ROOT)
        daemon.start(self.program(slot))
        slots[slot]["version"] = str(version)
        self._save_slots(slots)
        began = time.monotonic()
        progress(f"{self.program(slot)}: model server for {self.component.name} v{version} starting on port {port}")
        while not self._ready(port):
            daemon.running_info(self.program(slot))
            if time.monotonic() - began > SERVER_START_TIMEOUT_S:
                raise EmbeddedError(f"{self.program(slot)} not ready after {SERVER_START_TIMEOUT_S}s")
            time.sleep(0.3)
        progress(f"{self.program(slot)}: ready after {time.monotonic() - began:.1f}s")
        # Prometheus scrapes it from now on (the alert rules watch its errors and latency); the series carry the
        # component and version, the target adds the slot.
        write_targets(self.settings, "serving", self.program(slot), [f"127.0.0.1:{port}"], {"slot": slot})

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _start_proxy(self, progress: Progress) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise EmbeddedError("haproxy is missing: run `make setup` (it installs Debian's haproxy)")
        slots = self.slots()
        config = self.root / "haproxy.cfg"
        text = HAPROXY_CONFIG.format(
            socket=self._socket_path(),
            port=slots["proxy_port"],
            port_a=slots["a"]["port"],
            port_b=slots["b"]["port"],
            weight_a=100 if slots["stable"] == "a" else 0,
            weight_b=100 if slots["stable"] == "b" else 0,
            key_check=KEY_CHECK.format(keys=inference_keys.keys_path(self.settings))
            if inference_keys.enabled(self.settings)
            else "",
        )
        daemon = self.services.daemon
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
            # A proxy started with another config (the key check turned on or off) restarts on it; serve() sets
            # the weights right after.
            daemon.stop(self.proxy_program)
        daemon.register(self.proxy_program, (haproxy, "-db", "-f", str(config)), {}, 10, self.root)
        if not daemon.is_running(self.proxy_program):
            # A socket left by an earlier HAProxy would pass the wait below before the new one listens.
            self._socket_path().unlink(missing_ok=True)
            daemon.start(self.proxy_program)
            began = time.monotonic()
            while not self._socket_path().exists():
                daemon.running_info(self.proxy_program)
                if time.monotonic() - began > 30:
                    raise EmbeddedError(f"{self.proxy_program} did not open its admin socket")
                time.sleep(0.1)
            progress(f"{self.proxy_program}: HAProxy on {self.endpoint}")
        daemon.record_pids()

    def _socket_path(self) -> Path:
        return socket_path(self.root / "haproxy.sock")

    def haproxy(self, command: str) -> str:
        """One command on HAProxy's runtime API."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(self._socket_path()))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode().strip()

    def checks_keys(self) -> bool:
        """Whether the running proxy was started with the key check."""
        config = self.root / "haproxy.cfg"
        info = self.services.daemon.info(self.proxy_program)
        up = bool(info and info["statename"] in ("STARTING", "RUNNING"))  # STARTING: within its first seconds
        return up and config.exists() and "http_auth_bearer" in config.read_text()

    def reload_keys(self) -> None:
        """Give the running proxy the key map as it is now, in one step (a new map version, filled, committed), so
        a created key works and a revoked one is refused from the next request on, without a restart."""
        keys = inference_keys.keys_path(self.settings)
        answer = self.haproxy(f"prepare map {keys}")
        version = answer.rsplit(":", 1)[-1].strip()
        if not version.isdigit():
            raise EmbeddedError(f"HAProxy could not prepare the key map: {answer}")
        for digest, consumer in inference_keys.consumers(self.settings).items():
            added = self.haproxy(f"add map @{version} {keys} {digest} {consumer}")
            if added:
                raise EmbeddedError(f"HAProxy refused a key of {consumer}: {added}")
        committed = self.haproxy(f"commit map @{version} {keys}")
        if committed:
            raise EmbeddedError(f"HAProxy could not commit the key map: {committed}")

    def set_weights(self, weights: dict[str, int]) -> None:
        for slot, weight in weights.items():
            answer = self.haproxy(f"set weight servers/{slot} {weight}")
            if answer:
                raise EmbeddedError(f"HAProxy refused weight {weight} for slot {slot}: {answer}")

    def weights(self) -> dict[str, int]:
        """Current weights as HAProxy reports them."""
        weights = {}
        for slot in ("a", "b"):
            answer = self.haproxy(f"get weight servers/{slot}")
            weights[slot] = int(answer.split()[0])
        return weights

    def set_stable(self, slot: str) -> None:
        """Record ``slot`` as the stable one; the weights are ``set_weights``'s."""
        slots = self.slots()
        slots["stable"] = slot
        self._save_slots(slots)

    def stop_server(self, slot: str) -> None:
        """Stop ``slot``'s model server (the slot keeps its port and last version)."""
        remove_targets(self.settings, "serving", self.program(slot))
        self.services.daemon.stop(self.program(slot))

    def stop(self) -> None:
        self.services.daemon.stop(self.proxy_program)
        for slot in ("a", "b"):
            self.stop_server(slot)


class EmbeddedBackend:
    """``TrafficBackend`` over ``EmbeddedServing``."""

    def __init__(self, serving: EmbeddedServing, progress: Progress = print) -> None:
        self.serving = serving
        self.component = serving.component.name
        self.progress = progress

    def stable_version(self) -> str:
        slots = self.serving.slots()
        version = slots[slots["stable"]]["version"]
        if version is None:
            raise EmbeddedError(f"{self.component} is not being served: start it with `mlstack serve start`")
        return str(version)

    def start_canary(self, version: str, share: int) -> None:
        slots = self.serving.slots()
        canary = self.serving.canary_slot(slots["stable"])
        try:
            self.serving.start_server(canary, version, self.progress)
        except EmbeddedError as error:  # exited on its warm-up, or not ready in time: the rollout rolls it back
            raise CanaryNotReady(str(error)) from error
        self.set_share(share)

    def set_share(self, share: int) -> None:
        stable = self.serving.slots()["stable"]
        self.serving.set_weights({stable: 100 - share, self.serving.canary_slot(stable): share})

    def promote(self) -> None:
        old = self.serving.slots()["stable"]
        new = self.serving.canary_slot(old)
        self.serving.set_weights({new: 100, old: 0})
        self.serving.set_stable(new)
        self.serving.stop_server(old)

    def rollback(self) -> None:
        stable = self.serving.slots()["stable"]
        canary = self.serving.canary_slot(stable)
        self.serving.set_weights({stable: 100, canary: 0})
        self.serving.stop_server(canary)

    def snapshots(self) -> tuple[Snapshot, Snapshot]:
        slots = self.serving.slots()
        stable, canary = slots["stable"], self.serving.canary_slot(slots["stable"])

        prometheus = PrometheusReader(self.serving.services.settings.prometheus_url)

        def read(slot: str) -> Snapshot:
            version = slots[slot]["version"]
            if version is None:
                return Snapshot()
            counted = scrape(f"http://127.0.0.1:{slots[slot]['port']}/metrics", self.component, str(version))
            # The live metric is the monitor exporter's, which the embedded Prometheus scrapes (None without it).
            return dataclasses.replace(counted, live=prometheus.version_live(self.component, str(version)))

        return read(stable), read(canary)

    def load_state(self) -> dict[str, object] | None:
        path = self.serving.state_path
        if not path.exists():
            return None
        state: dict[str, object] = json.loads(path.read_text())
        return state

    def save_state(self, state: dict[str, object] | None) -> None:
        path = self.serving.state_path
        if state is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(state, indent=2))
