"""The feature pusher of each component, as the program registers it on the kind stack, is scraped by the cluster's
Prometheus as the monitor exporter is: ``prometheus.io/*`` pod annotations (the chart's ``kubernetes-pods`` job) on the
port its ``--metrics-port`` serves, listening beyond loopback, a named container port, and among the component's
NetworkPolicies selecting its pod, only the monitoring namespace let in from outside, and only on that port. Its
freshness histogram and stream series are what the streaming dashboard and the freshness alert read."""

from __future__ import annotations

from typing import Any

from tests.manifests.test_components_manifests import COMPONENTS, component_objects

__all__ = ["component_objects"]  # the fixture, shared with the component checks


def _pusher(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    name = f"{component}-feature-pusher"
    found = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name]
    assert len(found) == 1, f"Deployment/{name}: {len(found)} found"
    return found[0]


def _flag(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} in {args}"
    return args[args.index(flag) + 1]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (``matchLabels``, ``matchExpressions`` with In / NotIn / Exists / DoesNotExist)
    selects a pod labelled ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def _namespaces(peer: dict[str, Any]) -> list[str]:
    return [v for e in peer.get("namespaceSelector", {}).get("matchExpressions", []) for v in e["values"]]


def test_the_pusher_is_scraped_on_the_port_it_serves(component_objects: list[dict[str, Any]]) -> None:
    for c in COMPONENTS:
        template = _pusher(component_objects, c)["spec"]["template"]
        container = template["spec"]["containers"][0]
        port = int(_flag(container["args"], "--metrics-port"))
        assert _flag(container["args"], "--metrics-host") == "0.0.0.0", "Prometheus scrapes the pod's IP"
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
        assert template["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }


def test_only_the_monitoring_namespace_reaches_the_pusher_on_its_metrics_port(
    component_objects: list[dict[str, Any]],
) -> None:
    for c in COMPONENTS:
        pusher = _pusher(component_objects, c)
        port = int(_flag(pusher["spec"]["template"]["spec"]["containers"][0]["args"], "--metrics-port"))
        labels = pusher["spec"]["template"]["metadata"]["labels"]
        selecting = [
            o
            for o in component_objects
            if o["kind"] == "NetworkPolicy"
            and o["metadata"]["namespace"] == pusher["metadata"]["namespace"]
            and _selects(o["spec"]["podSelector"], labels)
        ]
        assert [o["metadata"]["name"] for o in selecting] == [f"{c}-feature-pusher-scrape"]
        outside = [
            (namespace, rule.get("ports"))
            for policy in selecting
            for rule in policy["spec"].get("ingress", [])
            for peer in rule["from"]
            for namespace in _namespaces(peer)
        ]
        assert outside == [("monitoring", [{"protocol": "TCP", "port": port}])], "Prometheus' namespace, and no other"
        for policy in selecting:
            for rule in policy["spec"]["ingress"]:
                # Any other peer is the pusher's own namespace (allowed anyway by its allow-same-namespace).
                assert all(p == {"podSelector": {}} for p in rule["from"] if "namespaceSelector" not in p), rule
