"""The kind tier: ``pulumi up`` of the kind stack through the Automation API, every platform service healthy, then
``pulumi destroy``. Needs Docker, kind and the Pulumi CLI; skips in one line naming what is missing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from cli import stack as deploy
from infra.cluster import preflight

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 1200


def _missing() -> str | None:
    if deploy.pulumi_cli() is None:
        return "pulumi CLI not found: install it (https://www.pulumi.com/docs/install/) or run `make tools`"
    return preflight.kind_cli() or preflight.docker()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


STACK = ("kind-tier", None)
"""A throw-away kind stack of the platform alone (``tests/kind/conftest.py``)."""


def _all_ready(api: Any, namespaces: list[str]) -> list[str]:
    """Names of Deployments/StatefulSets not yet fully ready in ``namespaces``."""
    pending = []
    for ns in namespaces:
        for d in api.list_namespaced_deployment(ns).items:
            if (d.status.ready_replicas or 0) < (d.spec.replicas or 0):
                pending.append(f"{ns}/{d.metadata.name}")
        for s in api.list_namespaced_stateful_set(ns).items:
            if (s.status.ready_replicas or 0) < (s.spec.replicas or 0):
                pending.append(f"{ns}/{s.metadata.name}")
    return pending


def _condition(custom: Any, group: str, version: str, ns: str, plural: str, name: str, kind: str = "Ready") -> bool:
    obj = custom.get_namespaced_custom_object(group, version, ns, plural, name)
    return any(c["type"] == kind and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def test_up_every_service_healthy_then_destroy(stack: Any, tmp_path: Path) -> None:
    from kubernetes import client, config

    result = stack.up(on_output=print)
    outputs = result.outputs
    assert outputs["profile"].value == "laptop"
    assert outputs["kubeconfig"].secret
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(outputs["kubeconfig"].value)
    config.load_kube_config(str(kubeconfig))
    apps, custom = client.AppsV1Api(), client.CustomObjectsApi()
    namespaces = ["cert-manager", "kafka", "flink", "feast", "mlflow", "kubeflow", "ray-system", "kserve"]
    namespaces += ["knative-serving", "monitoring"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (pending := _all_ready(apps, namespaces)) and time.monotonic() < deadline:
        time.sleep(10)
    assert pending == []
    assert _condition(custom, "kafka.strimzi.io", "v1", "kafka", "kafkas", "mlstack")
    assert _condition(
        custom, "operator.knative.dev", "v1beta1", "knative-serving", "knativeservings", "knative-serving"
    )
    preview = stack.preview()
    assert preview.change_summary.get("same", 0) > 0 and not preview.change_summary.get("update")
