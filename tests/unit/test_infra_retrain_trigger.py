"""The retraining trigger on the cluster, under ``pulumi.runtime.Mocks``: with components, one Deployment of the
repository's cluster launcher on the all-components pipeline image beside Prometheus, its Service, log volume,
account and Role, wired to the platform's addresses and acting on exactly the configured components; Alertmanager's
receiver gains it as a second webhook and MLflow lets its namespace in. Without components, none of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import images
from infra.config import ConfigError, RetrainingSettings, parse
from infra.services.prometheus import TRIGGER, TRIGGER_PORT, receiver_url, trigger_url
from infra.use_cases import cluster_retraining
from infra.use_cases.manifests import Endpoints
from infra.use_cases.retrain_trigger import trigger_args
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

pytestmark = pytest.mark.unit

COMPONENTS = ["fraud", "demand"]
ROLES = {
    ("kubernetes:core/v1:ConfigMap", "script"),
    ("kubernetes:core/v1:ServiceAccount", "account"),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", "role"),
    ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "role-binding"),
    ("kubernetes:core/v1:PersistentVolumeClaim", "log"),
    ("kubernetes:apps/v1:Deployment", "deployment"),
    ("kubernetes:core/v1:Service", "service"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "network-policy"),
}


@pytest.fixture(scope="module")
def run() -> mocks.Run:
    return mocks.run({**stack_config("kind"), "components": json.dumps(COMPONENTS)})


def _children(run: mocks.Run) -> dict[str, Any]:
    (root,) = run.of_type("mlstack:components:RetrainTrigger")
    return {r.name.removeprefix("retrain-trigger-"): r for r in run.registrations if r.parent == root.urn}


def _webhooks(run: mocks.Run) -> list[str]:
    config = run.named("prometheus-server").inputs["values"]["alertmanager"]["config"]
    (receiver,) = config["receivers"]
    return [hook["url"] for hook in receiver["webhook_configs"]]


def test_the_trigger_is_every_object_it_needs_and_nothing_more(run: mocks.Run) -> None:
    children = _children(run)
    assert {(r.typ, role) for role, r in children.items()} == ROLES


def test_it_runs_the_repository_launcher_on_the_pipeline_image_with_the_platforms_addresses(run: mocks.Run) -> None:
    children = _children(run)
    deployment = children["deployment"].inputs
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == images.reference(images.IMAGES["pipeline"])
    assert children["script"].inputs["data"] == {"cluster_retraining.py": Path(cluster_retraining.__file__).read_text()}
    args = container["args"]
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert args[0] == "/opt/mlstack/trigger/cluster_retraining.py" and container["command"] == ["python"]
    assert flags["--kfp-host"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert flags["--mlflow-uri"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert flags["--prometheus"] == "http://prometheus-server.monitoring.svc.cluster.local"
    assert flags["--namespace"] == "mlstack" and flags["--port"] == str(TRIGGER_PORT)
    assert flags["--offline-root"] == "s3://mlstack-features/{component}"
    assert flags["--ray-address"].startswith("http://mlstack-search-head-svc.mlstack"), "scheduled runs' search"
    assert (flags["--cooldown-s"], flags["--history-s"], flags["--settle-margin-s"]) == ("1800", "0", "60")
    assert "--no-on-alerts" not in args, "a stack that sets no retrain* key: alerts start runs"
    assert deployment["metadata"]["namespace"] == "monitoring" and deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == TRIGGER, "the decision log outlives the pod"
    assert pod["serviceAccountName"] == TRIGGER and pod["automountServiceAccountToken"] is True
    service = children["service"].inputs
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    depends = {run.by_urn(u).name for u in children["deployment"].dependencies}
    assert "image-pipeline" in depends, "it waits for its image"


def test_the_stacks_retraining_policy_reaches_the_trigger_as_it_parses_it(tmp_path: Path) -> None:
    """``mlstack:retrain*`` through ``trigger_args`` into the trigger's own parser (``cluster_retraining.parse``)."""
    config = parse({"retrainOnAlerts": "false", "retrainCooldown": "600", "retrainHistory": "7200",
                    "retrainSettleMargin": "360"})  # fmt: skip
    assert config.retraining == RetrainingSettings(on_alerts=False, cooldown_s=600, history_s=7200, settle_margin_s=360)
    endpoints = Endpoints(
        "kafka:9092", "feast-db", "redis:6379", "http://mlflow:5000", "http://minio:9000", "http://ml-pipeline:8888"
    )
    args = trigger_args(endpoints, "monitoring", "mlstack", config.retraining)
    log = args.index("--log")
    options = cluster_retraining.parse([*args[1:log], "--log", str(tmp_path / "d.jsonl"), *args[log + 2 :]])
    assert (options.on_alerts, options.cooldown_s, options.settle_margin_s) == (False, 600, 360)
    assert options.template.history_s == 7200
    with pytest.raises(ConfigError, match=r"retrainHistory.*expected an integer"):
        parse({"retrainHistory": "2h"})


def test_the_role_names_exactly_the_configured_components(run: mocks.Run) -> None:
    role = _children(run)["role"].inputs
    assert role["metadata"]["namespace"] == "mlstack"
    by_resource = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r.get("resourceNames") or ())): r["verbs"]
                   for r in role["rules"]}  # fmt: skip
    assert by_resource[(("serving.kserve.io",), ("inferenceservices",), ("demand", "fraud"))] == ["get", "patch"]
    assert by_resource[(("",), ("configmaps",), ("demand-rollout", "fraud-rollout"))] == ["get", "patch"]
    binding = _children(run)["role-binding"].inputs
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": TRIGGER, "namespace": "monitoring"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_alertmanager_posts_to_the_receiver_and_the_trigger_and_mlflow_lets_it_in(run: mocks.Run) -> None:
    assert _webhooks(run) == [receiver_url("monitoring"), trigger_url("monitoring")]
    assert trigger_url("monitoring") == f"http://{TRIGGER}.monitoring.svc.cluster.local:{TRIGGER_PORT}/alerts"
    clients = run.named("mlflow-chart").inputs["values"]["networkPolicy"]["clientNamespaces"]
    assert clients == ["kubeflow", "mlstack", "monitoring"]


def test_without_components_there_is_no_trigger_and_one_webhook() -> None:
    bare = mocks.run(stack_config("kind"))
    assert not bare.of_type("mlstack:components:RetrainTrigger")
    assert _webhooks(bare) == [receiver_url("monitoring")]
    clients = bare.named("mlflow-chart").inputs["values"]["networkPolicy"]["clientNamespaces"]
    assert clients == ["kubeflow", "mlstack"]
