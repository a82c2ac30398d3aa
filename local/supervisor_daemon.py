"""A supervisord daemon per state folder: it owns the service processes, their logs and their process groups.

supervisord (a well-kept process control system) gives us detached services that outlive the CLI call that
started them, log files, group kills on stop, and an XML-RPC API for status; readiness probes stay ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import psutil
from supervisor.xmlrpc import SupervisorTransport

from local.errors import EmbeddedError
from local.paths import socket_path

#: Set in the daemon's environment (inherited by every child) so leftovers can be found after a crash.
MARKER = "MLSTACK_SUPERVISED"


def log_tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined for a one-line error."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no log written"
    return " | ".join(line.strip() for line in text[-lines:]) or "empty log"


def _escape(value: str) -> str:
    # supervisord expands %(name)s in its config: a literal percent sign must be doubled.
    return value.replace("%", "%%")


class SupervisorDaemon:
    """Starts, drives and stops the supervisord of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.root = state_dir / "supervisor"
        self.programs = self.root / "programs"
        self.logs = state_dir / "logs"
        self.config = self.root / "supervisord.conf"
        self.pidfile = self.root / "supervisord.pid"
        self.socket = socket_path(self.root / "supervisor.sock")

    # -- lifecycle -------------------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The daemon's pid if it is alive, else None (a stale pid file is removed)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            alive = psutil.Process(pid).is_running() and "supervisord" in " ".join(psutil.Process(pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            alive = False
        if not alive:
            self.clean_stale()
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    def clean_stale(self) -> None:
        """Remove the pid file and socket a killed daemon left behind."""
        for leftover in (self.pidfile, self.socket):
            leftover.unlink(missing_ok=True)

    def ensure_started(self) -> bool:
        """Start the daemon if it is not running; True when this call started it."""
        if self.running():
            return False
        self.clean_stale()
        for folder in (self.root, self.programs, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._config_text())
        env = {**os.environ, MARKER: str(self.state_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedError(f"supervisord did not start: {(result.stderr or result.stdout).strip()[:300]}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                if self.rpc().getState()["statename"] == "RUNNING":
                    return True
            time.sleep(0.1)
        raise EmbeddedError(f"supervisord did not answer on {self.socket}; see {self.logs / 'supervisord.log'}")

    def shutdown(self, timeout: float = 90) -> None:
        """Stop every program (SIGTERM to each process group, SIGKILL after its stop timeout), then the daemon."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(OSError, xmlrpc.client.Error):
            self.rpc().shutdown()
        try:
            psutil.Process(pid).wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            psutil.Process(pid).kill()
        self.clean_stale()

    def record_pids(self) -> None:
        """Remember the programs' pids: some (redis) overwrite their environment, hiding the marker."""
        if not self.running():
            return
        known = {}
        for info in self.rpc().getAllProcessInfo():
            if info["pid"]:
                with contextlib.suppress(psutil.Error):
                    known[info["name"]] = [info["pid"], psutil.Process(info["pid"]).create_time()]
        (self.root / "pids.json").write_text(json.dumps(known))

    def forget_pids(self) -> None:
        (self.root / "pids.json").unlink(missing_ok=True)

    def _recorded(self) -> list[psutil.Process]:
        try:
            known = json.loads((self.root / "pids.json").read_text())
        except (FileNotFoundError, ValueError):
            return []
        found = []
        for pid, created in known.values():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.create_time() == created:
                    found.append(process)
        return found

    def leftovers(self) -> list[psutil.Process]:
        """Processes of this state folder that outlived their daemon: recorded pids and marked processes."""
        found = {p.pid: p for p in self._recorded()}
        for process in psutil.process_iter(["pid"]):
            if process.pid == os.getpid() or process.pid in found:
                continue
            with contextlib.suppress(psutil.Error):
                if process.environ().get(MARKER) == str(self.state_dir):
                    found[process.pid] = process
        return list(found.values())

    # -- programs --------------------------------------------------------------------------------------------

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def register(
        self,
        name: str,
        command: tuple[str, ...],
        env: dict[str, str],
        stop_timeout: int,
        directory: Path,
        restart_on_crash: bool = False,
    ) -> None:
        """Write (or rewrite) a program's config and make the daemon pick it up, stopped.

        Platform services are not restarted behind the user's back (readiness and status report failures);
        workers that recover by themselves (a Flink job restores its checkpoint) are restarted on a crash,
        as a Kubernetes Deployment would."""
        environment = ",".join(f'{key}="{_escape(value)}"' for key, value in env.items())
        text = "\n".join(
            [
                f"[program:{name}]",
                f"command={_escape(shlex.join(command))}",
                f"directory={_escape(str(directory))}",
                "autostart=false",
                f"autorestart={'true' if restart_on_crash else 'false'}",
                "startsecs=1",
                f"startretries={3 if restart_on_crash else 0}",
                "stopsignal=TERM",
                f"stopwaitsecs={stop_timeout}",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={_escape(str(self.log_path(name)))}",
                "stdout_logfile_maxbytes=50MB",
                "stdout_logfile_backups=1",
                f"environment={environment}" if environment else "",
                "",
            ]
        )
        path = self.programs / f"{name}.conf"
        if path.exists() and path.read_text() == text and self._known(name):
            return
        path.write_text(text)
        rpc = self.rpc()
        added, changed, removed = rpc.reloadConfig()[0]
        for group in changed + removed:
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.stopProcessGroup(group)
            rpc.removeProcessGroup(group)
        for group in added + changed:
            rpc.addProcessGroup(group)

    def _known(self, name: str) -> bool:
        try:
            self.rpc().getProcessInfo(name)
        except xmlrpc.client.Fault:
            return False
        return True

    def info(self, name: str) -> dict[str, Any] | None:
        """supervisord's view of a program (statename, pid, start, exitstatus), or None if unknown."""
        if not self.running():
            return None
        try:
            info: dict[str, Any] = self.rpc().getProcessInfo(name)
        except xmlrpc.client.Fault:
            return None
        return info

    def is_running(self, name: str) -> bool:
        info = self.info(name)
        return bool(info and info["statename"] == "RUNNING")

    def running_info(self, name: str) -> dict[str, Any]:
        """supervisord's view of a program that is starting or running; a one-line error naming its last log
        lines when it is down (exited, failed, or unknown)."""
        info = self.info(name) or {"statename": "UNKNOWN"}
        if info["statename"] in {"EXITED", "FATAL", "BACKOFF", "STOPPED", "UNKNOWN"}:
            raise EmbeddedError(
                f"{name} exited ({info['statename']}): {log_tail(self.log_path(name))} [log: {self.log_path(name)}]"
            )
        return info

    def start(self, name: str) -> None:
        try:
            self.rpc().startProcess(name, False)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise EmbeddedError(f"{name} could not be started: {fault.faultString}") from None

    def stop(self, name: str) -> None:
        try:
            self.rpc().stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
                raise EmbeddedError(f"{name} could not be stopped: {fault.faultString}") from None

    def _config_text(self) -> str:
        return "\n".join(
            [
                "[unix_http_server]",
                f"file={_escape(str(self.socket))}",
                "chmod=0700",
                "[supervisord]",
                f"logfile={_escape(str(self.logs / 'supervisord.log'))}",
                f"pidfile={_escape(str(self.pidfile))}",
                f"childlogdir={_escape(str(self.logs))}",
                f"directory={_escape(str(self.state_dir))}",
                "logfile_maxbytes=5MB",
                "logfile_backups=1",
                "loglevel=info",
                "nodaemon=false",
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface",
                "[include]",
                f"files={_escape(str(self.programs))}/*.conf",
                "",
            ]
        )
