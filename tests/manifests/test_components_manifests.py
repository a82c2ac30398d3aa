"""Every object a use-case component adds, as the program registers it: built-in kinds valid against the Kubernetes
schemas (``kubernetes-validate``) and the project's policy; custom resources checked against the fields their
CRDs define: Strimzi's and Flink's at the pinned operator versions, KServe's through the Python package's models.

- ``InferenceService``: round-trips through the ``kserve`` package's typed models (``V1beta1InferenceService``);
  a field the models do not know is dropped by the round trip, so the comparison fails. The models are those of the
  installed package (kserve 0.21), not of the KServe chart pinned in ``infra/versions.py`` (v0.16.0, see the note
  there): a field added after 0.16 would pass here and still be unknown to the cluster's CRD.
- ``KafkaTopic`` (Strimzi 0.49, ``kafka.strimzi.io/v1``; CRD ``043-Crd-kafkatopic.yaml``): ``spec`` has
  ``topicName`` (string), ``partitions`` (integer >= 1), ``replicas`` (integer 1-32767), ``config`` (object).
- ``FlinkDeployment`` (Flink Kubernetes Operator release-1.13.0, ``flink.apache.org/v1beta1``; CRD
  ``helm/flink-kubernetes-operator/crds/flinkdeployments.flink.apache.org-v1.yml``): the field sets below, the
  ``flinkVersion`` / ``upgradeMode`` / ``state`` enums, ``resource.cpu`` a number and ``memory`` a string; its
  ``podTemplate`` is a core ``PodTemplateSpec``, validated as a Pod.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from contract.registry import load
from devtools import go_tools as tools
from tests.manifests import policy
from tests.manifests.test_infra_manifests import KUBE_SCORE_IGNORED, KUBERNETES_VERSION, as_manifest
from tests.support import pulumi_mocks as mocks
from tests.support.kube_score import critical_findings
from tests.unit.test_infra_config import stack_config

COMPONENTS = ("fraud", "demand", "delivery")
CUSTOM = {"KafkaTopic", "FlinkDeployment", "InferenceService"}

# Strimzi 0.49 KafkaTopic (kafka.strimzi.io/v1) spec properties and their JSON types.
KAFKA_TOPIC_SPEC = {"topicName": str, "partitions": int, "replicas": int, "config": dict}

# Flink Kubernetes Operator release-1.13.0, FlinkDeployment v1beta1.
FLINK_SPEC = {
    "flinkConfiguration",
    "flinkVersion",
    "image",
    "imagePullPolicy",
    "ingress",
    "job",
    "jobManager",
    "logConfiguration",
    "mode",
    "podTemplate",
    "restartNonce",
    "serviceAccount",
    "taskManager",
}
FLINK_JOB = {
    "allowNonRestoredState",
    "args",
    "autoscalerResetNonce",
    "checkpointTriggerNonce",
    "entryClass",
    "initialSavepointPath",
    "jarURI",
    "parallelism",
    "savepointRedeployNonce",
    "savepointTriggerNonce",
    "state",
    "upgradeMode",
}
FLINK_MANAGER = {"podTemplate", "replicas", "resource"}
FLINK_RESOURCE = {"cpu": (int, float), "memory": str, "ephemeralStorage": str}
FLINK_VERSIONS = {"v1_16", "v1_17", "v1_18", "v1_19", "v1_20", "v2_0", "v2_1", "v2_2"}
UPGRADE_MODES = {"last-state", "savepoint", "stateless"}


@pytest.fixture(scope="module")
def component_objects() -> list[dict[str, Any]]:
    """The objects both components add to the kind stack (their ``UseCase`` children)."""
    raw = {**stack_config("kind"), "components": json.dumps(list(COMPONENTS))}
    run = mocks.run(raw)
    roots = {r.urn for r in run.of_type("mlstack:components:UseCase")}
    return [as_manifest(r) for r in run.registrations if r.parent in roots]


def _json(value: Any) -> Any:
    """Integers come back from the mock engine as floats (protobuf Struct numbers); undo that for type checks."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) >= len(COMPONENTS), kind
    return found


def test_builtin_kinds_valid_against_kubernetes_schemas(component_objects: list[dict[str, Any]]) -> None:
    kinds = {o["kind"] for o in component_objects}
    assert {"Secret", "ConfigMap", "Job", "Deployment"} <= kinds
    assert kinds >= CUSTOM
    checked = 0
    for obj in component_objects:
        if obj["kind"] in CUSTOM:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    # 2 Secrets, 4 ConfigMaps, 2 Jobs, 2 Deployments, 2 NetworkPolicies (clients', the pusher's scrape); with
    # feedback, the monitor exporter's ServiceAccount, Deployment, Service and NetworkPolicy.
    monitored = sum(load(c).streaming.feedback is not None for c in COMPONENTS)
    assert checked == 12 * len(COMPONENTS) + 4 * monitored


def test_component_objects_pass_policy(component_objects: list[dict[str, Any]]) -> None:
    problems = [p for o in component_objects for p in policy.violations(o) if not p.startswith("Secret/")]
    assert problems == []
    # The only Secrets carry the platform's generated values (secret outputs, proven in the unit tier).
    secrets = {o["metadata"]["name"] for o in component_objects if o["kind"] == "Secret"}
    assert secrets == {f"{c}-credentials" for c in COMPONENTS}  # one in mlstack, one in kubeflow each


def test_inference_service_round_trips_through_kserve_models(
    component_objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kserve.models
    import kubernetes.client.models
    from kserve import ApiClient
    from kserve.models import V1beta1InferenceService

    # KServe's models refer to Kubernetes' own types (V1ObjectMeta, V1Container, ...) by name; its deserializer
    # looks names up in kserve.models only, so lend it the kubernetes package's models.
    for name in dir(kubernetes.client.models):
        if name.startswith("V1") and not hasattr(kserve.models, name):
            monkeypatch.setattr(kserve.models, name, getattr(kubernetes.client.models, name), raising=False)
    client = ApiClient()
    for isvc in _of_kind(component_objects, "InferenceService"):
        typed = client._ApiClient__deserialize(isvc, V1beta1InferenceService)  # type: ignore[attr-defined]  # private, by design
        assert isinstance(typed, V1beta1InferenceService)
        assert client.sanitize_for_serialization(typed) == isvc
        container = typed.spec.predictor.containers[0]
        assert container.resources.limits and container.resources.requests
        assert typed.spec.predictor.service_account_name == "mlstack-workload"


def test_inference_service_predictor_is_a_valid_pod_spec(component_objects: list[dict[str, Any]]) -> None:
    for isvc in _of_kind(component_objects, "InferenceService"):
        predictor = isvc["spec"]["predictor"]
        pod_fields = {k: v for k, v in predictor.items() if k not in ("minReplicas", "canaryTrafficPercent")}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_fields}
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        assert policy.violations(pod) == []


def test_kafka_topics_use_only_crd_fields(component_objects: list[dict[str, Any]]) -> None:
    for topic in _of_kind(component_objects, "KafkaTopic"):
        assert topic["apiVersion"] == "kafka.strimzi.io/v1"
        spec = topic["spec"]
        assert set(spec) <= set(KAFKA_TOPIC_SPEC), set(spec) - set(KAFKA_TOPIC_SPEC)
        for key, kind in KAFKA_TOPIC_SPEC.items():
            assert isinstance(_json(spec[key]), kind), key
        assert spec["partitions"] >= 1 and 1 <= spec["replicas"] <= 32767
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]
        assert all(isinstance(_json(v), str | int) for v in spec["config"].values())


def test_flink_deployments_use_only_crd_fields(component_objects: list[dict[str, Any]]) -> None:
    for flink in _of_kind(component_objects, "FlinkDeployment"):
        assert flink["apiVersion"] == "flink.apache.org/v1beta1"
        spec = flink["spec"]
        assert set(spec) <= FLINK_SPEC, set(spec) - FLINK_SPEC
        assert set(spec["job"]) <= FLINK_JOB, set(spec["job"]) - FLINK_JOB
        assert spec["flinkVersion"] in FLINK_VERSIONS
        assert spec["job"]["upgradeMode"] in UPGRADE_MODES and spec["job"]["state"] in {"running", "suspended"}
        assert all(isinstance(a, str) for a in spec["job"]["args"])
        assert all(isinstance(v, str) for v in spec["flinkConfiguration"].values())
        for manager in ("jobManager", "taskManager"):
            assert set(spec[manager]) <= FLINK_MANAGER, manager
            resource = spec[manager]["resource"]
            assert set(resource) <= set(FLINK_RESOURCE), manager
            for key, kind in FLINK_RESOURCE.items():
                if key in resource:
                    assert isinstance(resource[key], kind), f"{manager}.resource.{key}"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flink"}, "spec": spec["podTemplate"]["spec"]}
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
        security = spec["podTemplate"]["spec"]["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0


# kube-score checks that do not apply to a component's objects, each for a stated reason (the platform's own list in
# test_infra_manifests, plus the ones specific to run-to-completion Jobs and single-consumer pushers).
COMPONENT_KUBE_SCORE_IGNORED = {
    **KUBE_SCORE_IGNORED,
    "container-image-pull-policy": "content-tagged images loaded into kind: IfNotPresent is the point",
    "deployment-replicas": "the feature pusher is one consumer of the features topic per component by design",
}


def test_kube_score_finds_nothing_critical(component_objects: list[dict[str, Any]], tmp_path: Path) -> None:
    kube_score = tools.find("kube-score")
    if kube_score is None:
        pytest.skip(tools.missing_reason("kube-score"))
    builtin = [o for o in component_objects if o["kind"] not in CUSTOM]
    critical = critical_findings(kube_score, builtin, COMPONENT_KUBE_SCORE_IGNORED, tmp_path / "components.yaml")
    assert critical == [], "\n".join(critical)
