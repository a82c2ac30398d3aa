"""The rules the pinned Knative Serving, Knative Operator and KServe apply to what the program registers, stated here
as read upstream, and the program's objects checked against them (both stacks, with two components deployed).

- Knative Serving (knative/serving@knative-v1.19.0): a revision's pod spec passes ``PodSpecMask``,
  ``PodSecurityContextMask``, ``SecurityContextMask`` and ``CapabilitiesMask`` (pkg/apis/serving/fieldmask.go,
  called from pkg/apis/serving/k8s_validation.go), each gated by flags of ``config-features`` whose defaults are in
  ``defaultFeaturesConfig`` (pkg/apis/config/features.go). A field the mask drops is refused.
- Knative Operator (knative/operator@knative-v1.19.0): ``spec.config.<name>`` is written into the ConfigMap
  ``config-<name>`` (pkg/reconciler/common/config_maps.go); ``ingress.kourier.http-port`` is refused unless
  ``service-type`` is ``NodePort`` (pkg/reconciler/knativeserving/ingress/kourier.go).
- KServe (kserve/kserve@v0.16.0): an annotated ``Serverless`` is recorded as ``status.deploymentMode: Knative``
  (``GetDeploymentMode``, pkg/controller/v1beta1/inferenceservice/utils/utils.go) and every later update whose
  annotation differs from the status is refused (``validateDeploymentMode``, pkg/apis/serving/v1beta1/
  inference_service_validation.go). The controller chart renders ``ClusterServingRuntime`` objects unconditionally
  (charts/kserve-resources/templates/clusterservingruntimes.yaml) beside their ``failurePolicy: Fail`` validating
  webhook (templates/webhookconfiguration.yaml). Its pod mutator, on every pod labelled
  ``serving.kserve.io/inferenceservice``, runs ``InjectMetricsAggregator``
  (pkg/webhook/admission/pod/metrics_aggregate_injector.go, constants in pkg/constants/constants.go).
- Prometheus chart (prometheus-community/helm-charts@prometheus-27.45.0:charts/prometheus/values.yaml): job
  ``kubernetes-pods`` keeps a pod whose ``prometheus.io/scrape`` is ``true`` and scrapes ``<pod IP>:<prometheus.io/
  port>`` at ``prometheus.io/path``: that container directly, not via queue-proxy, whose ports a user container may
  not take (``reservedPorts``, knative/serving@knative-v1.19.0:pkg/apis/serving/k8s_validation.go).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from infra.cluster import kind
from infra.services import kserve
from infra.use_cases.manifests import APP_UID
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

STACKS = ("kind", "gke")
COMPONENTS = ("fraud", "demand")

# pkg/apis/config/features.go, defaultFeaturesConfig: the flags these rules read, all off unless configured.
FEATURE_DEFAULTS = {
    "kubernetes.podspec-securitycontext": "disabled",
    "secure-pod-defaults": "disabled",
    "kubernetes.containerspec-addcapabilities": "disabled",
}
# PodSecurityContextMask with kubernetes.podspec-securitycontext not disabled.
POD_SECURITY_WITH_FLAG = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "seccompProfile"}
# SecurityContextMask: allowed on a container whatever the flags (privileged only as false; capabilities see below).
CONTAINER_SECURITY = {
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "seccompProfile",
    "privileged",
}
MAX_ID = 2**31 - 1  # minUserID/maxUserID and the group bounds in k8s_validation.go: 0 .. math.MaxInt32

# KServe's predictor fields that make the controller select a (Cluster)ServingRuntime (pkg/apis/serving/v1beta1/
# predictor.go at v0.16.0); a predictor with none of them and its own ``containers`` uses no runtime.
RUNTIME_SELECTORS = {
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
}
LEGACY_MODES = {"Serverless": "Knative", "RawDeployment": "Standard"}  # pkg/constants/constants.go (deprecated)
MODES = {"Knative", "Standard", "ModelMesh"}

# KServe's metrics aggregator: the annotations it reads, the ports it writes, and the chart's defaults for a pod
# without the annotations (charts/kserve-resources/values.yaml, ``kserve.metricsaggregator``).
SET_PROMETHEUS = "serving.kserve.io/enable-prometheus-scraping"
AGGREGATE = "serving.kserve.io/enable-metric-aggregation"
QUEUE_PROXY_METRICS_PORT = "9091"  # DefaultPodPrometheusPort: queue-proxy's user metrics port
AGGREGATE_METRICS_PORT = "9088"  # QueueProxyAggregatePrometheusMetricsPort
AGGREGATOR_DEFAULTS = {"enableMetricAggregation": "false", "enablePrometheusScraping": "false"}
KNATIVE_RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}  # queue-proxy's ports and the profiling port


def _flag(features: dict[str, str], name: str) -> str:
    return features.get(name, FEATURE_DEFAULTS[name]).lower()


def refused_pod_security(pod_security: dict[str, Any], features: dict[str, str]) -> set[str]:
    """The pod-level ``securityContext`` fields Knative refuses under ``features`` (``PodSpecMask`` and
    ``PodSecurityContextMask``)."""
    if _flag(features, "kubernetes.podspec-securitycontext") != "disabled":
        allowed = POD_SECURITY_WITH_FLAG
    elif _flag(features, "secure-pod-defaults") == "enabled":
        # Only an opt-out of the more secure defaults: seccompProfile RuntimeDefault or Unconfined.
        seccomp = (pod_security.get("seccompProfile") or {}).get("type")
        allowed = {"seccompProfile"} if seccomp in ("RuntimeDefault", "Unconfined") else set()
    else:
        allowed = set()
    return set(pod_security) - allowed


def refused_container_security(security: dict[str, Any], features: dict[str, str]) -> set[str]:
    """The container ``securityContext`` fields Knative refuses (``SecurityContextMask``, ``CapabilitiesMask``)."""
    refused = set(security) - CONTAINER_SECURITY
    if security.get("privileged") is True:
        refused.add("privileged")
    add = (security.get("capabilities") or {}).get("add")
    if add and not (
        _flag(features, "kubernetes.containerspec-addcapabilities") == "enabled"
        or (_flag(features, "secure-pod-defaults") == "enabled" and add == ["NET_BIND_SERVICE"])
    ):
        refused.add("capabilities.add")
    return refused


def recorded_mode(annotation: str) -> str:
    """``status.deploymentMode`` the KServe controller records for an InferenceService annotated ``annotation``."""
    return LEGACY_MODES.get(annotation, annotation)


def update_refused(status_mode: str, annotation: str) -> bool:
    """KServe's ``validateDeploymentMode``: an update whose annotation differs from the recorded mode is refused."""
    return annotation != status_mode


def mutated_pod_annotations(annotations: dict[str, str], aggregator: dict[str, str]) -> dict[str, str]:
    """The pod's annotations after KServe's ``InjectMetricsAggregator`` with the controller's ``aggregator`` config:
    a missing flag takes the config's value; with scraping "true" the Prometheus port becomes queue-proxy's."""
    out = dict(annotations)
    aggregate = out.setdefault(AGGREGATE, aggregator["enableMetricAggregation"])
    if out.setdefault(SET_PROMETHEUS, aggregator["enablePrometheusScraping"]) == "true":
        out["prometheus.io/port"] = AGGREGATE_METRICS_PORT if aggregate == "true" else QUEUE_PROXY_METRICS_PORT
        out["prometheus.io/path"] = "/metrics"
    return out


def scrape_target(annotations: dict[str, str], pod_ip: str) -> str | None:
    """The URL the chart's ``kubernetes-pods`` job scrapes for a pod (None: the pod is not kept)."""
    if annotations.get("prometheus.io/scrape") != "true":
        return None
    return f"http://{pod_ip}:{annotations['prometheus.io/port']}{annotations.get('prometheus.io/path') or '/metrics'}"


REVISION_POD = {"serving.knative.dev/revision": "r-00001"}  # Knative labels every revision pod with its revision


def _admits(policy: dict[str, Any], from_ns: str, port: int, pod_labels: dict[str, str]) -> bool:
    """Whether NetworkPolicy spec ``policy`` admits pods of ``from_ns`` to ``port`` of a pod with ``pod_labels``."""
    selector = policy["podSelector"]
    if any(pod_labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    if any(e["operator"] != "Exists" or e["key"] not in pod_labels for e in selector.get("matchExpressions", [])):
        return False
    for rule in policy.get("ingress", []):
        if rule.get("ports") and {"protocol": "TCP", "port": port} not in rule["ports"]:
            continue
        for peer in rule["from"]:
            expressions = peer.get("namespaceSelector", {}).get("matchExpressions", [])
            if any(e["key"] == "kubernetes.io/metadata.name" and from_ns in e["values"] for e in expressions):
                return True
    return False


REGISTRY = "europe-west4-docker.pkg.dev/mlstack-demo/mlstack"  # a cloud stack pushes the components' images


@pytest.fixture(scope="module", params=STACKS)
def run(request: pytest.FixtureRequest) -> mocks.Run:
    raw = {**stack_config(request.param), "components": json.dumps(list(COMPONENTS))}
    if request.param != "kind":
        raw["imageRegistry"] = REGISTRY
    return mocks.run(raw, request.param)


def _knative_serving(run: mocks.Run) -> dict[str, Any]:
    spec: dict[str, Any] = run.named("kserve-knative-serving").inputs["spec"]
    return spec


def _isvcs(run: mocks.Run) -> list[dict[str, Any]]:
    found = [r.inputs for r in run.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")]
    assert len(found) == len(COMPONENTS)
    return found


def test_rules_refuse_a_pod_level_user_by_default() -> None:
    """The rule as read: Knative's defaults refuse the pod-level user and fsGroup, and accept it on the container."""
    pod = {"runAsNonRoot": True, "runAsUser": 1, "runAsGroup": 1, "fsGroup": 1, "seccompProfile": {"type": "x"}}
    assert refused_pod_security(pod, {}) == set(pod)
    assert refused_pod_security(pod, {"kubernetes.podspec-securitycontext": "enabled"}) == set()
    container = {k: v for k, v in pod.items() if k != "fsGroup"}
    assert refused_container_security(container, {}) == set()


def test_predictor_security_is_allowed_by_our_knative_features(run: mocks.Run) -> None:
    """Every securityContext field an InferenceService predictor sets (KServe copies the predictor's pod spec into
    the Knative Service) is allowed by the ``config-features`` our KnativeServing configures, and the predictor
    still runs as the app's non-root user."""
    features: dict[str, str] = _knative_serving(run)["config"].get("features", {})
    for isvc in _isvcs(run):
        predictor = isvc["spec"]["predictor"]
        assert refused_pod_security(predictor.get("securityContext") or {}, features) == set()
        for container in predictor["containers"]:
            security = container["securityContext"]
            assert refused_container_security(security, features) == set(), container["name"]
            pod_security = predictor.get("securityContext") or {}
            user = security.get("runAsUser", pod_security.get("runAsUser"))
            assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
            assert user == APP_UID and 0 < user <= MAX_ID


def test_deployment_mode_is_the_one_the_controller_records(run: mocks.Run) -> None:
    """The annotation equals the mode KServe records in the status, so canary patches and finalizer removal (both
    updates) pass its webhook; the controller's default mode and the stack output say the same."""
    values = run.named("kserve-controller").inputs["values"]
    chart_mode = values["kserve"]["controller"]["deploymentMode"]
    for isvc in _isvcs(run):
        annotation = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        assert annotation in MODES
        assert not update_refused(recorded_mode(annotation), annotation)
        assert annotation == chart_mode == run.outputs["kserveDeploymentMode"] == "Knative"


def test_kserve_chart_installs_no_serving_runtimes(run: mocks.Run) -> None:
    """The controller chart goes through a post-renderer that drops exactly the ClusterServingRuntime documents (here
    on a stream shaped like Helm's rendered output), and no InferenceService needs a runtime."""
    inputs = run.named("kserve-controller").inputs
    command = [inputs["postRenderer"]["command"], *inputs["postRenderer"]["args"]]
    kept = [
        "\n# Source: kserve/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: c\n",
        "\n# Source: kserve/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\ndata:\n  x: |\n"
        "    kind: ClusterServingRuntime\n",
        "\n# Source: kserve/templates/webhookconfiguration.yaml\napiVersion: admissionregistration.k8s.io/v1\n"
        "kind: ValidatingWebhookConfiguration\nmetadata:\n  name: clusterservingruntime.serving.kserve.io\n",
    ]
    dropped = [
        "\n# Source: kserve/templates/clusterservingruntimes.yaml\napiVersion: serving.kserve.io/v1alpha1\n"
        "kind: ClusterServingRuntime\nmetadata:\n  name: kserve-lgbserver\n",
        "\napiVersion: serving.kserve.io/v1alpha1\nkind: 'ClusterServingRuntime'\nmetadata:\n  name: kserve-mlserver\n",
    ]
    stream = "---" + "---".join([kept[0], dropped[0], kept[1], dropped[1], kept[2]])
    out = subprocess.run(command, input=stream, capture_output=True, text=True, check=True).stdout
    assert out == "---".join(["", *kept])
    for isvc in _isvcs(run):
        predictor = isvc["spec"]["predictor"]
        assert predictor["containers"] and not RUNTIME_SELECTORS & set(predictor)


def test_kourier_gateway_is_the_node_port_kind_maps(run: mocks.Run) -> None:
    """On kind the operator's own Kourier Service is a NodePort on the port kind maps to the host; ``http-port`` is
    set only with ``service-type: NodePort`` (the operator refuses it otherwise)."""
    kourier = _knative_serving(run)["ingress"]["kourier"]
    assert kourier["enabled"] is True
    if "http-port" in kourier:
        assert kourier["service-type"] == "NodePort"
    if run.outputs["profile"] == "laptop":
        assert kourier == {
            "enabled": True,
            "service-type": "NodePort",
            "http-port": kind.INGRESS_NODE_PORT,
            "https-port": kserve.KOURIER_HTTPS_NODE_PORT,
        }
    else:
        assert kourier == {"enabled": True, "service-type": "LoadBalancer"}
    assert not [r for r in run.registrations if r.typ == "kubernetes:core/v1:Service" and "kourier" in r.name]


def test_rule_kserve_scraping_flag_moves_the_port_to_queue_proxy() -> None:
    """The rule as read: the scraping flag sends Prometheus to queue-proxy (9091, or 9088 aggregated), which does
    not serve the model server's own series; without the flag and with the chart's defaults nothing changes."""
    ours = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
    flagged = mutated_pod_annotations({**ours, SET_PROMETHEUS: "true"}, AGGREGATOR_DEFAULTS)
    assert flagged["prometheus.io/port"] == QUEUE_PROXY_METRICS_PORT
    both = mutated_pod_annotations({**ours, SET_PROMETHEUS: "true", AGGREGATE: "true"}, AGGREGATOR_DEFAULTS)
    assert both["prometheus.io/port"] == AGGREGATE_METRICS_PORT
    assert mutated_pod_annotations(ours, AGGREGATOR_DEFAULTS)["prometheus.io/port"] == "8080"
    assert scrape_target({**ours, "prometheus.io/scrape": "false"}, "10.0.0.1") is None


def test_prometheus_scrapes_the_model_servers_own_port(run: mocks.Run) -> None:
    """After KServe's pod mutator, each model server's pod is kept by the Prometheus chart's ``kubernetes-pods`` job
    and scraped on the port the server listens on and the pod declares (Knative's user port, ``ports[0]``), never a
    queue-proxy port; the workloads namespace admits the monitoring namespace to that port of the revision pods."""
    controller = run.named("kserve-controller").inputs["values"]["kserve"]
    aggregator = {**AGGREGATOR_DEFAULTS, **controller.get("metricsaggregator", {})}
    # The chart's own scrape jobs: only the alert rules are added to its serverFiles, not its prometheus.yml.
    assert set(run.named("prometheus-server").inputs["values"]["serverFiles"]) == {"alerting_rules.yml"}
    monitoring = run.named("prometheus-server").inputs["namespace"]
    for isvc in _isvcs(run):
        assert SET_PROMETHEUS not in isvc["metadata"]["annotations"]
        container = isvc["spec"]["predictor"]["containers"][0]
        server_port = int(container["args"][container["args"].index("--http_port") + 1])
        assert container["ports"][0]["containerPort"] == server_port
        assert server_port not in KNATIVE_RESERVED_PORTS
        pod = mutated_pod_annotations(isvc["metadata"]["annotations"], aggregator)
        assert scrape_target(pod, "10.0.0.1") == f"http://10.0.0.1:{server_port}/metrics"
        policies = run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        ns = isvc["metadata"]["namespace"]
        mine = [p.inputs["spec"] for p in policies if p.inputs["metadata"]["namespace"] == ns]
        assert any(_admits(p, monitoring, server_port, REVISION_POD) for p in mine), isvc["metadata"]["name"]
