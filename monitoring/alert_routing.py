"""Alertmanager's routing, as code, for both modes: every alert goes to one receiver whose webhooks are the
project's alert receiver (``monitoring.alert_receiver`` in embedded mode, its Deployment in the cluster) and, in
embedded mode, the retraining trigger (``monitoring.retrain_trigger``). Grouped per alert, component and version, so
a canary's alert is not folded into its stable's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitoring import metrics as m
from monitoring.alert_receiver import WEBHOOK_PATH

__all__ = ["RECEIVER", "SHIPPED_ROUTING", "WEBHOOK_PATH", "Routing", "alertmanager_config", "receivers", "route"]

RECEIVER = "mlstack"
"""The receiver's name in Alertmanager's configuration."""


@dataclass(frozen=True)
class Routing:
    """Alertmanager's grouping times (its own defaults, except a shorter repeat: an unresolved model alert is worth
    a reminder within a working day). Tests shorten them."""

    group_wait: str = "30s"
    """How long a new group waits for more alerts before its first notification."""
    group_interval: str = "5m"
    """How long before a group's new alerts are notified."""
    repeat_interval: str = "4h"
    """How long before a still-firing alert is notified again."""


SHIPPED_ROUTING = Routing()


def route(routing: Routing = SHIPPED_ROUTING) -> dict[str, Any]:
    """Alertmanager's top-level route: everything to the project's receiver."""
    return {
        "receiver": RECEIVER,
        "group_by": ["alertname", m.COMPONENT, m.VERSION],
        "group_wait": routing.group_wait,
        "group_interval": routing.group_interval,
        "repeat_interval": routing.repeat_interval,
    }


def receivers(webhook_url: str, *more: str) -> list[dict[str, Any]]:
    """The one receiver: webhooks that are told of resolutions too (a trigger must know an alert ended). Each URL
    is its own integration, notified and retried on its own: one that is down delays no other."""
    for url in (webhook_url, *more):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the alert webhook {url!r} is not an http(s) URL")
    webhooks = [{"url": url, "send_resolved": True} for url in (webhook_url, *more)]
    return [{"name": RECEIVER, "webhook_configs": webhooks}]


def alertmanager_config(webhook_url: str, routing: Routing = SHIPPED_ROUTING, *more: str) -> dict[str, Any]:
    """Alertmanager's whole configuration file, as a dict to dump to YAML: the receiver, then ``more`` webhooks
    (the retraining trigger's)."""
    return {"route": route(routing), "receivers": receivers(webhook_url, *more)}
