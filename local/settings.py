"""Ports and locations of the embedded services, overridable through ``MLSTACK_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from contract.live_evaluation import Evidence
from local.errors import EmbeddedError
from local.paths import state_dir
from local.service_spec import free_port
from monitoring.alert_routing import SHIPPED_ROUTING, WEBHOOK_PATH, Routing
from monitoring.alert_rules import SHIPPED_THRESHOLDS, SHIPPED_TIMING, Thresholds, Timing
from monitoring.retrain_trigger import TriggerPolicy


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable)
    if raw is None:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise EmbeddedError(f"{variable}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise EmbeddedError(f"{variable}={port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class AlertingSettings:
    """How often the embedded Prometheus scrapes and evaluates, and the rules' and Alertmanager's times. The
    defaults are the shipped ones (the cluster's chart uses the same rules and routing); tests shorten them."""

    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    rules: Timing = SHIPPED_TIMING
    thresholds: Thresholds = SHIPPED_THRESHOLDS
    routing: Routing = SHIPPED_ROUTING


@dataclass(frozen=True)
class RetrainSettings:
    """The retraining trigger's runs in embedded mode (the supervised ``retrain`` service): its search, the canary of
    what the gate registers, and the cooldown between runs. The defaults are the shipped ones; the loop drill
    (``mlstack demo --drift``) and tests shorten them (code only, like ``AlertingSettings``)."""

    trials: int = 6
    cooldown_s: float = TriggerPolicy.cooldown_s
    """Alerts within this many seconds of a run's end start no run (``monitoring.retrain_trigger``)."""
    window_s: float = 30.0
    """The canary's analysis window."""
    schedule: tuple[int, ...] = (10, 25, 50, 100)
    min_requests: int = 100
    """Requests per version before a canary window is judged."""
    live_evidence: Evidence = "not worse"
    """What the canary must show on live labels before it takes all traffic (``AnalysisConfig.live_evidence``)."""
    live_min_labels: int = 200
    history_s: float = 0.0
    """How far back from its start a run's training data reaches (0: everything archived)."""
    settle_margin_s: float = TriggerPolicy.settle_margin_s
    """Seconds of the changed world's labelled traffic a run an alert started waits for, beyond the label delay
    (``TriggerPolicy.settle_margin_s``)."""

    def options(self) -> tuple[str, ...]:
        """As ``mlstack trigger serve``'s options."""
        return (
            "--trials", str(self.trials),
            "--cooldown", str(self.cooldown_s),
            "--window", str(self.window_s),
            "--schedule", ",".join(map(str, self.schedule)),
            "--min-requests", str(self.min_requests),
            "--live-evidence", self.live_evidence,
            "--live-min-labels", str(self.live_min_labels),
            "--history", str(self.history_s),
            "--settle-margin", str(self.settle_margin_s),
        )  # fmt: skip


@dataclass(frozen=True)
class EmbeddedSettings:
    """Where each embedded service listens and keeps its state."""

    state_dir: Path = field(default_factory=state_dir)
    """Data, logs and pid files (``MLSTACK_STATE_DIR``, default ``.state/`` in the repo)."""
    kafka_port: int = 9092
    """Kafka client listener (``MLSTACK_KAFKA_PORT``)."""
    kafka_controller_port: int = 9093
    """KRaft controller listener (``MLSTACK_KAFKA_CONTROLLER_PORT``)."""
    mlflow_port: int = 5000
    """MLflow tracking server and UI (``MLSTACK_MLFLOW_PORT``)."""
    redis_port: int = 6379
    """Redis, the Feast online store (``MLSTACK_REDIS_PORT``)."""
    prometheus_port: int = 9090
    """Prometheus: scrapes the model servers, evaluates the alert rules (``MLSTACK_PROMETHEUS_PORT``)."""
    alertmanager_port: int = 9095
    """Alertmanager (``MLSTACK_ALERTMANAGER_PORT``; not its usual 9093, which is Kafka's controller here)."""
    alerts_port: int = 9096
    """The alert receiver, Alertmanager's webhook (``MLSTACK_ALERTS_PORT``)."""
    retrain_port: int = 9097
    """The retraining trigger, Alertmanager's second webhook and ``mlstack retrain``'s (``MLSTACK_RETRAIN_PORT``)."""
    retrain_on_alerts: bool = True
    """Alerts start retraining runs (``MLSTACK_RETRAIN_ON_ALERTS=0``: the trigger only logs what it would do; a
    manual ``mlstack retrain`` still runs). The test tier turns it off except where the loop is the subject."""
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    """Scrape, evaluation and alerting times (code only: tests shorten them)."""
    retraining: RetrainSettings = field(default_factory=RetrainSettings)
    """The retraining trigger's runs (code only: the loop drill and tests shorten them)."""

    @classmethod
    def from_env(cls) -> EmbeddedSettings:
        """Defaults, overridden by ``MLSTACK_<FIELD>`` environment variables."""
        defaults = cls(state_dir=state_dir())
        ports: dict[str, Any] = {  # by field name, so a new port field needs no change here
            f.name: _port(f"MLSTACK_{f.name.upper()}", getattr(defaults, f.name))
            for f in fields(cls)
            if f.name.endswith("_port")
        }
        automatic = os.environ.get("MLSTACK_RETRAIN_ON_ALERTS", "1").strip().lower() not in ("0", "false", "no", "off")
        settings = replace(defaults, **ports, retrain_on_alerts=automatic)
        settings.check()
        return settings

    @classmethod
    def on_free_ports(cls, state_dir: Path, retrain_on_alerts: bool = False) -> EmbeddedSettings:
        """Fresh ports and a private state folder: tests and benchmarks never touch a running stack. Alerts start
        no retraining unless asked: a test's alert must not set a pipeline and a canary going beside it."""
        ports: dict[str, Any] = {f.name: free_port() for f in fields(cls) if f.name.endswith("_port")}
        return cls(state_dir=state_dir, retrain_on_alerts=retrain_on_alerts, **ports)

    def environment(self) -> dict[str, str]:
        """The ``MLSTACK_*`` variables that make ``from_env`` in another process (a supervised service, the
        ``mlstack`` CLI) see these settings."""
        ports = {
            f"MLSTACK_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self) if f.name.endswith("_port")
        }
        automatic = {"MLSTACK_RETRAIN_ON_ALERTS": "1" if self.retrain_on_alerts else "0"}
        return {"MLSTACK_STATE_DIR": str(self.state_dir), **ports, **automatic}

    def check(self) -> None:
        """Refuse two services on one port."""
        ports = [(f.name, getattr(self, f.name)) for f in fields(self) if f.name.endswith("_port")]
        seen: dict[int, str] = {}
        for name, port in ports:
            if port in seen:
                raise EmbeddedError(f"{name} and {seen[port]} are both set to port {port}")
            seen[port] = name

    @property
    def kafka_bootstrap(self) -> str:
        """Bootstrap servers for Kafka clients."""
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mlflow_url(self) -> str:
        """Tracking URI and UI address of the MLflow server."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @property
    def alerts_url(self) -> str:
        """The receiver's webhook, where ``GET`` answers the alerts it recorded."""
        return f"http://127.0.0.1:{self.alerts_port}{WEBHOOK_PATH}"

    @property
    def retrain_url(self) -> str:
        """The retraining trigger's base URL (``POST /retrain``, ``POST /alerts``, ``GET /decisions``)."""
        return f"http://127.0.0.1:{self.retrain_port}"

    @property
    def redis_address(self) -> str:
        """``host:port`` of the Redis online store, as Feast's ``connection_string`` wants it."""
        return f"127.0.0.1:{self.redis_port}"
