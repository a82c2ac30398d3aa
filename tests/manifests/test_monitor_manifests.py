"""The monitor of each component with feedback, as the program registers it on the kind stack: its topics, the
monitor job's FlinkDeployment beside the feature job's (its own name, so its own HA ConfigMaps, and its own state),
and the exporter: its own token-less account bound to no role, scraped by the cluster's Prometheus through pod
annotations on a port only the monitoring namespace (and the workloads namespace) may reach. The generic checks
(Kubernetes schemas, CRD fields, policy, kube-score) run over the same objects in test_components_manifests."""

from __future__ import annotations

from typing import Any

from contract.registry import load
from contract.streaming import topics
from infra.use_cases.monitoring import EXPORTER_PORT
from tests.manifests.test_components_manifests import COMPONENTS, component_objects

__all__ = ["component_objects"]  # the fixture, shared with the component checks

MONITORED = [c for c in COMPONENTS if load(c).streaming.feedback is not None]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_every_component_with_feedback_has_a_monitor() -> None:
    assert "delivery" in MONITORED


def test_the_monitor_topics_exist_with_the_contract_names(component_objects: list[dict[str, Any]]) -> None:
    names = {o["spec"]["topicName"] for o in component_objects if o["kind"] == "KafkaTopic"}
    for c in MONITORED:
        wanted = topics(c, labels=True)
        assert {wanted["labels"], wanted["predictions"], wanted["scored"], wanted["predictions_dead_letter"]} <= names


def test_the_monitor_job_runs_apart_from_the_feature_job(component_objects: list[dict[str, Any]]) -> None:
    for c in MONITORED:
        features = _named(component_objects, "FlinkDeployment", f"{c}-features")["spec"]
        monitor = _named(component_objects, "FlinkDeployment", f"{c}-monitor")["spec"]
        assert monitor["image"] == features["image"], "the streaming image runs both"
        assert "/app/monitoring/monitor_job.py" in monitor["job"]["args"]
        for key in ("execution.checkpointing.dir", "high-availability.storageDir"):
            assert monitor["flinkConfiguration"][key] != features["flinkConfiguration"][key], key
            assert monitor["flinkConfiguration"][key].startswith(f"s3://mlstack-flink/{c}/monitor/"), key


def test_the_exporter_is_scraped_and_holds_no_credentials_to_the_api(component_objects: list[dict[str, Any]]) -> None:
    bindings = [o for o in component_objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    for c in MONITORED:
        name = f"{c}-monitor-exporter"
        account = _named(component_objects, "ServiceAccount", name)
        assert account["automountServiceAccountToken"] is False
        assert not [b for b in bindings if any(s.get("name") == name for s in b.get("subjects", []))]
        template = _named(component_objects, "Deployment", name)["spec"]["template"]
        assert template["spec"]["serviceAccountName"] == name
        assert template["spec"]["automountServiceAccountToken"] is False
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(EXPORTER_PORT)
        container = template["spec"]["containers"][0]
        assert {"containerPort": EXPORTER_PORT, "name": "metrics", "protocol": "TCP"} in container["ports"]
        assert (
            container["image"]
            == _named(component_objects, "Deployment", f"{c}-feature-pusher")["spec"]["template"]["spec"]["containers"][
                0
            ]["image"]
        ), "the component's pipeline image (main environment)"

        policy = _named(component_objects, "NetworkPolicy", f"{name}-scrape")["spec"]
        labels = template["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
        rule = policy["ingress"][0]
        assert rule["ports"] == [{"protocol": "TCP", "port": EXPORTER_PORT}]
        namespaces = [
            value
            for peer in rule["from"]
            for expression in peer.get("namespaceSelector", {}).get("matchExpressions", [])
            for value in expression["values"]
        ]
        assert namespaces == ["monitoring"], "Prometheus' namespace, and no other"
