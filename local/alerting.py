"""Embedded mode's monitoring services: Prometheus (Debian's) scraping the model servers and evaluating the alert
rules, Alertmanager (Debian's ``prometheus-alertmanager``) routing the alerts, and the project's alert receiver.

The rule file and Alertmanager's routing are the cluster's (``monitoring.alert_rules``, ``monitoring.alert_routing``),
written into the state folder before each start. Scrape targets come and go with the model servers (a canary starts
and stops), so Prometheus discovers them from files (``file_sd_configs``): whoever starts a server writes its
target file with ``write_targets`` and removes it with ``remove_targets``; Prometheus notices within seconds.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

import serving.metrics
from local.errors import EmbeddedError
from local.paths import REPO_ROOT, main_module
from local.service_spec import ServiceSpec
from local.settings import EmbeddedSettings
from monitoring.alert_routing import WEBHOOK_PATH, alertmanager_config
from monitoring.alert_rules import rule_file

SCRAPE_JOBS = ("serving", "monitoring")
"""Prometheus jobs fed by target files: the model servers, and the monitor jobs and feature pushers (coming)."""


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    package = "prometheus" if names[0] == "prometheus" else "prometheus-alertmanager"
    raise EmbeddedError(f"{names[0]} is not installed: run `make setup` (installs Debian's {package})")


def _write(path: Path, text: str) -> None:
    """Replace ``path`` whole: Prometheus watches these files and must never read half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


# -- scrape targets ------------------------------------------------------------------------------------------


def targets_dir(settings: EmbeddedSettings, job: str) -> Path:
    if job not in SCRAPE_JOBS:
        raise EmbeddedError(f"unknown scrape job {job!r}; known: {list(SCRAPE_JOBS)}")
    return settings.state_dir / "prometheus" / "targets" / job


def write_targets(
    settings: EmbeddedSettings, job: str, name: str, addresses: Sequence[str], labels: Mapping[str, str]
) -> Path:
    """Have Prometheus scrape ``addresses`` (``host:port``, path ``/metrics``) under ``job`` as ``name``; the
    ``labels`` are added to each target's series (never ``component`` or ``version``: the series carry those)."""
    path = targets_dir(settings, job) / f"{name}.json"
    _write(path, json.dumps([{"targets": list(addresses), "labels": dict(labels)}], indent=2))
    return path


def remove_targets(settings: EmbeddedSettings, job: str, name: str) -> None:
    (targets_dir(settings, job) / f"{name}.json").unlink(missing_ok=True)


# -- Prometheus ----------------------------------------------------------------------------------------------


def prometheus_config(settings: EmbeddedSettings, rules: Path) -> dict[str, object]:
    alerting = settings.alerting
    return {
        "global": {
            "scrape_interval": alerting.scrape_interval,
            "evaluation_interval": alerting.evaluation_interval,
        },
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}]},
        "scrape_configs": [
            {"job_name": job, "file_sd_configs": [{"files": [str(targets_dir(settings, job) / "*.json")]}]}
            for job in SCRAPE_JOBS
        ],
    }


def prometheus_service(settings: EmbeddedSettings) -> ServiceSpec:
    """Prometheus with the project's rules, its model-server targets, and Alertmanager to notify."""
    binary = _binary("prometheus")
    root = settings.state_dir / "prometheus"
    config, rules = root / "prometheus.yml", root / "rules" / "mlstack.rules.yml"

    def prepare() -> None:
        alerting = settings.alerting
        _write(rules, rule_file(serving.metrics, alerting.thresholds, alerting.rules))
        _write(config, yaml.safe_dump(prometheus_config(settings, rules), sort_keys=False))
        for job in SCRAPE_JOBS:
            targets_dir(settings, job).mkdir(parents=True, exist_ok=True)

    command = (
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={root / 'data'}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
        f"--web.external-url={settings.prometheus_url}/",  # alerts link here (the default is the host's name)
        "--web.enable-lifecycle",  # POST /-/reload re-reads rules and config without a restart
    )
    return ServiceSpec(
        name="prometheus",
        command=command,
        ports=(settings.prometheus_port,),
        probe=lambda: _ready(f"{settings.prometheus_url}/-/ready"),
        url=settings.prometheus_url,
        startup_timeout=60,
        prepare=prepare,
    )


# -- Alertmanager and the receiver ---------------------------------------------------------------------------


def alertmanager_service(settings: EmbeddedSettings) -> ServiceSpec:
    """Alertmanager routing every alert to the receiver; one instance, so its cluster listener is off."""
    binary = _binary("prometheus-alertmanager", "alertmanager")
    root = settings.state_dir / "alertmanager"
    config = root / "alertmanager.yml"

    def prepare() -> None:
        trigger = f"{settings.retrain_url}{WEBHOOK_PATH}"
        text = alertmanager_config(settings.alerts_url, settings.alerting.routing, trigger)
        _write(config, yaml.safe_dump(text, sort_keys=False))
        (root / "data").mkdir(parents=True, exist_ok=True)

    command = (
        binary,
        f"--config.file={config}",
        f"--storage.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        f"--web.external-url={settings.alertmanager_url}/",
        "--cluster.listen-address=",  # no peers: the default would bind 9094 on every interface
    )
    return ServiceSpec(
        name="alertmanager",
        command=command,
        ports=(settings.alertmanager_port,),
        probe=lambda: _ready(f"{settings.alertmanager_url}/-/ready"),
        url=settings.alertmanager_url,
        startup_timeout=60,
        prepare=prepare,
    )


def retrain_trigger_service(settings: EmbeddedSettings) -> ServiceSpec:
    """The retraining trigger (``monitoring.retrain_trigger`` with embedded mode's runs): ``mlstack trigger serve``."""
    automatic = "--on-alerts" if settings.retrain_on_alerts else "--no-on-alerts"
    command = main_module(
        "cli", "trigger", "serve", "--port", str(settings.retrain_port), automatic, *settings.retraining.options()
    )
    return ServiceSpec(
        name="retrain",
        command=command,
        ports=(settings.retrain_port,),
        probe=lambda: _ready(f"{settings.retrain_url}/-/healthy"),
        url=settings.retrain_url,
        startup_timeout=60,
        env={"PYTHONPATH": str(REPO_ROOT), **settings.environment()},
    )


def alerts_log(settings: EmbeddedSettings) -> Path:
    """The receiver's JSON-lines record of every alert it was sent."""
    return settings.state_dir / "alerts" / "alerts.jsonl"


def alert_receiver_service(settings: EmbeddedSettings) -> ServiceSpec:
    """The project's webhook receiver (``monitoring.alert_receiver``)."""
    command = main_module(
        "monitoring.alert_receiver", "--port", str(settings.alerts_port), "--log", str(alerts_log(settings))
    )
    return ServiceSpec(
        name="alerts",
        command=command,
        ports=(settings.alerts_port,),
        probe=lambda: _ready(f"http://127.0.0.1:{settings.alerts_port}/-/healthy"),
        url=settings.alerts_url,
        startup_timeout=30,
        env={"PYTHONPATH": str(REPO_ROOT)},
    )
