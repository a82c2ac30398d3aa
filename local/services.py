"""Start, health-check, report and stop the embedded services as one set."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from local.alerting import alert_receiver_service, alertmanager_service, prometheus_service, retrain_trigger_service
from local.errors import EmbeddedError
from local.kafka_broker import kafka_service
from local.mlflow_server import mlflow_service
from local.redis_server import redis_service
from local.service_spec import ServiceSpec, port_free
from local.settings import EmbeddedSettings
from local.supervisor_daemon import SupervisorDaemon, log_tail

Progress = Callable[[str], None]

#: The platform services of embedded mode, in start order (the alert path from its end: receiver, retraining
#: trigger, Alertmanager, then Prometheus, so that no alert of a fresh start is sent to a service that is not up yet).
SERVICE_BUILDERS: dict[str, Callable[[EmbeddedSettings], ServiceSpec]] = {
    "kafka": kafka_service,
    "redis": redis_service,
    "mlflow": mlflow_service,
    "alerts": alert_receiver_service,
    "retrain": retrain_trigger_service,
    "alertmanager": alertmanager_service,
    "prometheus": prometheus_service,
}


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``services status``."""

    name: str
    state: str
    healthy: bool
    pid: int | None
    uptime_s: float
    rss_mb: float
    url: str
    log: Path


def tree_rss_mb(pid: int | None) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    if not pid:
        return 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def port_owner(port: int) -> str:
    """``pid 123 (java)`` of the process listening on ``port``, when it can be seen."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


class EmbeddedServices:
    """The embedded platform services of one state folder, supervised as a set."""

    def __init__(self, settings: EmbeddedSettings, names: Iterable[str] | None = None) -> None:
        self.settings = settings
        self.names = list(names or SERVICE_BUILDERS)
        unknown = sorted(set(self.names) - set(SERVICE_BUILDERS))
        if unknown:
            raise EmbeddedError(f"unknown service(s) {unknown}; known: {sorted(SERVICE_BUILDERS)}")
        self.daemon = SupervisorDaemon(settings.state_dir)

    def specs(self) -> list[ServiceSpec]:
        """Build each service's spec; this is also the preflight (Java, jars, binaries)."""
        return [SERVICE_BUILDERS[name](self.settings) for name in self.names]

    # -- up --------------------------------------------------------------------------------------------------

    def up(self, progress: Progress = print) -> list[ServiceStatus]:
        """Start whatever is not running, wait until every service is ready, and return their status."""
        specs = self.specs()
        if not self.daemon.running():
            self._reap_leftovers(progress)
        started_daemon = self.daemon.ensure_started()
        started: list[str] = []
        try:
            pending: dict[str, tuple[ServiceSpec, float]] = {}
            for spec in specs:
                info = self.daemon.info(spec.name)
                if info and info["statename"] == "RUNNING" and spec.probe():
                    progress(f"{spec.name}: already running at {spec.url}")
                    continue
                if info and info["statename"] in {"RUNNING", "STARTING"}:
                    self.daemon.stop(spec.name)
                self._check_ports(spec)
                if spec.prepare:
                    spec.prepare()
                self.daemon.register(
                    spec.name, spec.command, dict(spec.env), spec.stop_timeout, self.settings.state_dir
                )
                self.daemon.start(spec.name)
                started.append(spec.name)
                pending[spec.name] = (spec, time.monotonic())
                progress(f"{spec.name}: starting")
            self._wait_ready(pending, progress)
            self.daemon.record_pids()
        except BaseException:
            # Ctrl-C or a failed start: leave nothing behind that this call started.
            if started_daemon:
                self.daemon.shutdown()
            else:
                for name in started:
                    self.daemon.stop(name)
            raise
        return self.status()

    def _check_ports(self, spec: ServiceSpec) -> None:
        for port in spec.ports:
            if not port_free(port):
                raise EmbeddedError(
                    f"port {port} for {spec.name} is in use by {port_owner(port)}: stop it, or choose another "
                    f"port with MLSTACK_{spec.name.upper()}_PORT"
                )

    def _wait_ready(self, pending: dict[str, tuple[ServiceSpec, float]], progress: Progress) -> None:
        while pending:
            for name, (spec, since) in list(pending.items()):
                info = self.daemon.running_info(name)
                if info["statename"] == "RUNNING" and spec.probe():
                    progress(f"{name}: ready in {time.monotonic() - since:.1f}s at {spec.url}")
                    del pending[name]
                elif time.monotonic() - since > spec.startup_timeout:
                    raise EmbeddedError(
                        f"{name} not ready after {spec.startup_timeout:.0f}s: "
                        f"{log_tail(self.daemon.log_path(name))} [log: {self.daemon.log_path(name)}]"
                    )
            time.sleep(0.25)

    # -- single services (used by failure drills and restarts) ------------------------------------------------

    def spec(self, name: str) -> ServiceSpec:
        if name not in self.names:
            raise EmbeddedError(f"unknown service {name!r}; known: {self.names}")
        return SERVICE_BUILDERS[name](self.settings)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send a signal to a service's whole process group, as a crash would."""
        info = self.daemon.info(name)
        if not info or not info["pid"]:
            raise EmbeddedError(f"{name} is not running")
        psutil.Process(info["pid"]).send_signal(sig)
        psutil.Process(info["pid"]).wait(60)

    def restart(self, name: str, progress: Progress = print) -> None:
        """Stop (if running) and start one service, waiting for readiness."""
        spec = self.spec(name)
        self.daemon.stop(name)
        if spec.prepare:
            spec.prepare()
        self.daemon.start(name)
        self._wait_ready({name: (spec, time.monotonic())}, progress)
        self.daemon.record_pids()

    def reconfigure(self, names: Iterable[str], progress: Progress = print) -> None:
        """Restart services with these settings' configuration (their command and files), e.g. the loop drill's
        alert times on services a user started with the shipped ones; their data is kept."""
        for name in names:
            spec = self.spec(name)
            self.daemon.stop(name)
            if spec.prepare:
                spec.prepare()
            self.daemon.register(spec.name, spec.command, dict(spec.env), spec.stop_timeout, self.settings.state_dir)
            self.daemon.start(name)
            self._wait_ready({name: (spec, time.monotonic())}, progress)
        self.daemon.record_pids()

    # -- status and down -------------------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        rows = []
        for spec in self.specs():
            info = self.daemon.info(spec.name)
            state = info["statename"] if info else "STOPPED"
            pid = info["pid"] if info and info["pid"] else None
            uptime = float(info["now"] - info["start"]) if info and pid else 0.0
            rows.append(
                ServiceStatus(
                    name=spec.name,
                    state=state,
                    healthy=state == "RUNNING" and spec.probe(),
                    pid=pid,
                    uptime_s=uptime,
                    rss_mb=tree_rss_mb(pid),
                    url=spec.url,
                    log=self.daemon.log_path(spec.name),
                )
            )
        return rows

    def programs(self) -> list[ServiceStatus]:
        """Every other program the supervisor runs for this state folder (streaming jobs, Feast pushers, event
        archives, model servers, proxies): running means healthy here; each one's own status command probes it."""
        if not self.daemon.running():
            return []
        services = {spec.name for spec in self.specs()}
        rows = []
        for info in self.daemon.rpc().getAllProcessInfo():
            if info["name"] in services:
                continue
            pid = info["pid"] or None
            rows.append(
                ServiceStatus(
                    name=info["name"],
                    state=info["statename"],
                    healthy=info["statename"] == "RUNNING",
                    pid=pid,
                    uptime_s=float(info["now"] - info["start"]) if pid else 0.0,
                    rss_mb=tree_rss_mb(pid),
                    url="",
                    log=self.daemon.log_path(info["name"]),
                )
            )
        return sorted(rows, key=lambda row: row.name)

    def down(self, progress: Progress = print) -> int:
        """Stop every service and the daemon; kill leftovers of a crashed run. Returns processes stopped."""
        pid = self.daemon.pid()
        children = []
        if pid:
            children = psutil.Process(pid).children(recursive=True)
            progress(f"stopping {len(children)} process(es) under supervisord pid {pid}")
            self.daemon.shutdown()
        reaped = self._reap_leftovers(progress)
        return len(children) + reaped

    def _reap_leftovers(self, progress: Progress) -> int:
        """Kill processes of this state folder whose supervisor died (e.g. SIGKILL): nothing manages them."""
        leftovers = self.daemon.leftovers()
        for process in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                progress(f"killing leftover pid {process.pid} ({process.name()}) of a run whose supervisor died")
                process.kill()
        psutil.wait_procs(leftovers, timeout=30)
        self.daemon.clean_stale()
        self.daemon.forget_pids()
        return len(leftovers)
