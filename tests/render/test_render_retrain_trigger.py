"""The retraining trigger in the render tier: the real engine and provider write its Deployment, Service, account,
Role and binding, log volume and NetworkPolicy (Alertmanager's chart, whose configuration names it, is left out in
render mode: the manifest tier checks that configuration with amtool)."""

from __future__ import annotations

from collections import Counter

from infra.services.prometheus import TRIGGER
from tests.render.conftest import RenderRun
from tests.render.render_stack import load_documents

KINDS = {
    "Deployment": 1,
    "Service": 1,
    "ServiceAccount": 1,
    "ConfigMap": 1,
    "PersistentVolumeClaim": 1,
    "NetworkPolicy": 1,
    "Role": 1,
    "RoleBinding": 1,
}


def test_the_trigger_renders_with_its_account_role_and_policy(render_run: RenderRun) -> None:
    documents = load_documents(render_run.snapshot)
    own = [d for d in documents if TRIGGER in str((d.get("metadata") or {}).get("name", ""))]
    assert Counter(d["kind"] for d in own) == KINDS, [f"{d['kind']} {d['metadata']['name']}" for d in own]
    role = next(d for d in own if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "mlstack"
    assert sorted({v for rule in role["rules"] for v in rule["verbs"]}) == ["create", "get", "patch"]
    deployment = next(d for d in own if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "monitoring"
    names = [f"{d['kind']} {d['metadata']['name']}" for d in own]
    print("\nretrain trigger: " + ", ".join(sorted(names)))
