"""Regression tests for defects found by reading the pinned upstreams (infra/UPSTREAM-CHECKS.md): each test states
the upstream rule it guards, with the file and tag it was read at, and fails on the code as it was before the fix.

- KFP 2.14.3 rejects a platform spec with fields its proto lacks (``secretAsEnv[].optional``).
- cert-manager's API check Job is a Helm hook, which ``helm.v4.Chart`` drops unless the hook annotations go.
- The Flink operator pod's webhook container is sized by the profile.
- The Knative operator webhook's limits are the chart's (500m/500Mi), not the operator's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from contract import registry
from infra.profiles import PROFILES
from infra.use_cases import training
from infra.use_cases.manifests import Endpoints
from tests.support import pulumi_mocks as mocks

# -- KFP: the Kubernetes platform spec -------------------------------------------------------------------------

# Fields (protojson names) of the platform-spec messages this project writes, as KFP 2.14.3 defines them; checked
# at kubeflow/pipelines@2.14.3:kubernetes_platform/proto/kubernetes_executor_config.proto (SecretAsEnv,
# SecretKeyToEnvMap, ConfigMapAsVolume). SecretAsEnv gains `optional` only in 2.15.0, and the 2.14.3 backend reads
# the spec with strict protojson.Unmarshal (backend/src/v2/compiler/argocompiler/container.go), so an unknown field
# fails every run. A top-level field not listed here fails the test: read its message at the pinned tag, add it.
KFP_2_14_3_FIELDS: dict[str, set[str]] = {
    "secretAsEnv": {"secretName", "keyToEnv", "secretNameParameter"},
    "secretAsEnv.keyToEnv": {"secretKey", "envVar"},
    "configMapAsVolume": {"configMapName", "mountPath", "optional", "configMapNameParameter"},
}

ENDPOINTS = Endpoints(
    kafka_bootstrap="kafka:9092",
    feast_db_host="feast-postgres",
    feast_redis="feast-redis:6379",
    mlflow_uri="http://mlflow",
    s3_endpoint="http://s3:8333",
    kfp_api="http://ml-pipeline:8888",
)
COMPILED = {
    "pipelineInfo": {"name": "training"},
    "deploymentSpec": {"executors": {"exec-a": {"container": {"image": "a"}}, "exec-b": {"container": {"image": "b"}}}},
}


def _unknown_fields(config: dict[str, Any]) -> list[str]:
    """Paths of the fields in one executor's platform config that KFP 2.14.3's proto does not define."""
    unknown = [key for key in config if key not in KFP_2_14_3_FIELDS]
    for message in ("secretAsEnv", "configMapAsVolume"):
        for i, entry in enumerate(config.get(message, [])):
            unknown += [f"{message}[{i}].{k}" for k in entry if k not in KFP_2_14_3_FIELDS[message]]
            for j, pair in enumerate(entry.get("keyToEnv", [])):
                allowed = KFP_2_14_3_FIELDS[f"{message}.keyToEnv"]
                unknown += [f"{message}[{i}].keyToEnv[{j}].{k}" for k in pair if k not in allowed]
    return unknown


def test_pipeline_platform_spec_uses_only_fields_kfp_2_14_3_defines() -> None:
    package = training.pipeline_package(registry.load("fraud"), yaml.safe_dump(COMPILED), ENDPOINTS)
    _, platform = yaml.safe_load_all(package)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {"exec-a", "exec-b"}
    for name, config in executors.items():
        assert _unknown_fields(config) == [], name
        # Still required: the Secret is referenced without `optional` (a required SecretKeyRef in the 2.14.3
        # driver, backend/src/v2/driver/k8s.go), the ConfigMap says so where the proto allows it.
        (volume,) = config["configMapAsVolume"]
        assert volume["optional"] is False
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == "fraud-credentials" and secret["keyToEnv"]


# -- cert-manager: the API check runs as an ordinary Job ------------------------------------------------------

# The chart's values whose defaults make the API check's Job, Role/RoleBinding and ServiceAccount post-install
# hooks (checked at cert-manager/cert-manager@v1.19.1:deploy/charts/cert-manager/values.yaml; the templates
# startupapicheck-job.yaml, -rbac.yaml, -serviceaccount.yaml write each map as the objects' annotations when set).
HOOK_ANNOTATION_VALUES = (
    ("startupapicheck", "jobAnnotations"),
    ("startupapicheck", "rbac", "annotations"),
    ("startupapicheck", "serviceAccount", "annotations"),
)


@pytest.fixture(scope="module")
def platform_run() -> mocks.Run:
    return mocks.run({"services": json.dumps(["cert-manager", "flink", "kserve"])})


def test_cert_manager_api_check_is_no_hook_so_the_chart_waits_for_it(platform_run: mocks.Run) -> None:
    """``helm.v4.Chart`` renders without hooks, so the hook annotations must be deleted (an explicit null; an empty
    map merges with the defaults and keeps them). Then the Job is a child of the chart the provider awaits to
    completion, and the Flink operator and KServe, which depend on the chart, wait for cert-manager's webhook."""
    chart = platform_run.named("cert-manager-chart").inputs
    (values_file,) = chart["valueYamlFiles"]
    nulls = yaml.safe_load(values_file.text)
    for path in HOOK_ANNOTATION_VALUES:
        *parents, leaf = path
        node = nulls
        for key in parents:
            node = node[key]
        assert leaf in node and node[leaf] is None, ".".join(path)
    # The inline values merge over the file (pulumi-kubernetes MergeMaps): none of them may put a map back.
    check = chart["values"]["startupapicheck"]
    assert check["enabled"] is True
    assert not {"jobAnnotations", "rbac", "serviceAccount"} & set(check)
    assert check["resources"]["requests"]
    chart_urn = platform_run.named("cert-manager-chart").urn
    for dependant in ("flink-operator", "kserve-controller"):
        assert chart_urn in platform_run.named(dependant).dependencies, dependant


# -- Flink operator: the webhook container ----------------------------------------------------------------------


def test_flink_operator_pod_sizes_its_webhook_container(platform_run: mocks.Run) -> None:
    """Checked at apache/flink-kubernetes-operator@release-1.13.0: helm/flink-kubernetes-operator/values.yaml
    (``operatorPod.webhook.resources: {}``) and templates/controller/deployment.yaml (the ``flink-webhook``
    container reads it)."""
    values = platform_run.named("flink-operator").inputs["values"]
    profile = PROFILES["laptop"]  # the kind stack's profile
    assert values["operatorPod"]["webhook"]["resources"] == profile["flink.webhook"].resources()
    assert values["operatorPod"]["resources"] == profile["flink.operator"].resources()
    for p in PROFILES.values():
        # One pod, two containers: the webhook runs as many times as the operator, and counts in the budget.
        assert p["flink.webhook"].replicas == p["flink.operator"].replicas, p.name
        assert not p["flink.webhook"].set_by_upstream and p.within_budget(), p.name


# -- Knative operator chart: its own pods' sizes ----------------------------------------------------------------


@pytest.mark.parametrize("profile", list(PROFILES), ids=list(PROFILES))
def test_knative_operator_pods_counted_at_the_charts_sizes(profile: str) -> None:
    """Checked at knative/operator@knative-v1.19.0: config/charts/knative-operator/values.yaml (operator 100m/100Mi
    requests, 1000m/1000Mi limits; operator_webhook 100m/100Mi requests, 500m/500Mi limits)."""
    operator, webhook = PROFILES[profile]["knative.operator"], PROFILES[profile]["knative.operator-webhook"]
    assert (operator.cpu, operator.memory, operator.cpu_limit, operator.memory_limit) == (100, 100, 1000, 1000)
    assert (webhook.cpu, webhook.memory, webhook.cpu_limit, webhook.memory_limit) == (100, 100, 500, 500)
    assert operator.set_by_upstream and webhook.set_by_upstream
