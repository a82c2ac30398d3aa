"""The InferenceService of a component in cluster mode, running the project's serving runtime image.

Canary mechanism: KServe's ``canaryTrafficPercent`` in Knative mode. Knative keeps the previous
revision alive and splits requests between revisions by percentage, so a 10% canary gets 10% of requests with
one pod per revision; rollback (0%) pins the previous revision instantly. The Standard-mode ``spec.canary``
(KServe 0.20+) splits by replica ratio instead, which with the laptop profile's single replica cannot express
10%, and it leaves the ratio to the Deployment's pod count rather than to the router.
"""

from __future__ import annotations

from typing import Any

from contract import Component

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
HTTP_PORT = 8080
DEPLOYMENT_MODE = "Knative"
"""KServe's name for its Knative-backed mode, in the annotation and the controller's chart value alike.

Not the older "Serverless": in the pinned KServe that is a deprecated alias (pkg/constants/constants.go) the controller
records as ``status.deploymentMode: Knative`` (``GetDeploymentMode``, pkg/controller/v1beta1/inferenceservice/utils/
utils.go), and the validating webhook (``validateDeploymentMode``, pkg/apis/serving/v1beta1/
inference_service_validation.go) then refuses every update whose annotation differs from the status: canary patches,
and the finalizer removal a delete needs. Checked at kserve/kserve@v0.16.0.
"""


def server_args(component: str, version: str, mlflow_uri: str, feast_repo: str, kafka_bootstrap: str = "") -> list[str]:
    """``serving.server``'s arguments; ``kafka_bootstrap`` (the Strimzi bootstrap service) turns the inference
    log on (every scored row on ``<component>.predictions``)."""
    return [
        "--component",
        component,
        "--model-version",
        version,
        "--mlflow-uri",
        mlflow_uri,
        "--feast-repo",
        feast_repo,
        "--http_port",
        str(HTTP_PORT),
        *(["--kafka-bootstrap", kafka_bootstrap] if kafka_bootstrap else []),
    ]


def inference_service(
    component: Component,
    namespace: str,
    image: str,
    version: str,
    mlflow_uri: str,
    feast_repo: str,
    resources: dict[str, dict[str, str]],
    min_replicas: int = 1,
    kafka_bootstrap: str = "",
) -> dict[str, Any]:
    """The InferenceService serving ``version`` of the component as its stable revision, logging what it serves
    through ``kafka_bootstrap`` when given."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {
            "name": component.name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "mlstack", "mlstack.io/component": component.name},
            # Prometheus scrapes the server's own port (the mlstack_* series the canary analysis reads). Not
            # KServe's serving.kserve.io/enable-prometheus-scraping: when "true" its pod mutator rewrites
            # prometheus.io/port to queue-proxy's 9091, which has none of them (InjectMetricsAggregator, checked at
            # kserve/kserve@v0.16.0:pkg/webhook/admission/pod/metrics_aggregate_injector.go); absent, it takes the
            # chart's metricsaggregator.enablePrometheusScraping, "false", and leaves these annotations alone.
            "annotations": {
                "serving.kserve.io/deploymentMode": DEPLOYMENT_MODE,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(HTTP_PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": image,
                        "command": ["python", "-m", "serving.server"],
                        "args": server_args(component.name, version, mlflow_uri, feast_repo, kafka_bootstrap),
                        "ports": [{"containerPort": HTTP_PORT, "protocol": "TCP"}],
                        "resources": resources,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            }
        },
    }


def served_version(isvc: dict[str, Any]) -> str:
    """The ``--model-version`` the predictor runs (empty: the ``champion`` alias, resolved when it starts)."""
    args = isvc["spec"]["predictor"]["containers"][0]["args"]
    return str(args[args.index("--model-version") + 1])


def with_version(isvc: dict[str, Any], version: str) -> list[dict[str, Any]]:
    """The predictor's containers with ``--model-version`` set to ``version`` (for a merge patch)."""
    containers = [dict(c) for c in isvc["spec"]["predictor"]["containers"]]
    args = list(containers[0]["args"])
    args[args.index("--model-version") + 1] = version
    containers[0]["args"] = args
    return containers
