"""The training search on KubeRay, under ``pulumi.runtime.Mocks``: with components deployed, one RayCluster on the
pipeline image sized by the profile, its head's Jobs API port exposed and reachable from KFP's namespace (and from
nowhere else outside the namespace), the scheduled runs' ``ray_address`` pointing at it, and no Kubernetes rights
left over for a RayJob path nobody takes."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra import images
from infra.config import SERVICES
from infra.profiles import FULL, LAPTOP
from infra.services import kuberay, objects
from infra.use_cases import pipeline_upload
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config

ROOT = Path(__file__).resolve().parents[2]
RAY_CLUSTER = "kubernetes:ray.io/v1:RayCluster"
ADDRESS = "http://mlstack-search-head-svc.mlstack.svc.cluster.local:8265"
REGISTRY = "europe-west4-docker.pkg.dev/mlstack-demo/mlstack"


def _with(stack: str, **extra: str) -> dict[str, str]:
    registry = {"imageRegistry": REGISTRY} if stack == "gke" else {}
    return {**stack_config(stack), "components": json.dumps(["fraud", "demand"]), **registry, **extra}


@pytest.fixture(scope="module")
def runs() -> dict[str, mocks.Run]:
    return {stack: mocks.run(_with(stack), stack_name=stack) for stack in ("kind", "gke")}


def _cluster(run: mocks.Run) -> dict[str, Any]:
    (cluster,) = run.of_type(RAY_CLUSTER)
    return cluster.inputs


def _upload_args(run: mocks.Run, component: str = "fraud") -> list[str]:
    job = run.named(f"{component}-pipeline-upload").inputs
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_one_search_cluster_on_the_pipeline_image_after_what_it_needs(runs: dict[str, mocks.Run]) -> None:
    kind = runs["kind"]
    cluster = _cluster(kind)
    assert cluster["metadata"] == {
        "name": "mlstack-search",
        "namespace": "mlstack",
        "labels": dict(objects.PART_OF),
    }
    assert cluster["spec"]["rayVersion"] == kuberay.RAY_VERSION
    image = images.reference(images.IMAGES["pipeline"])
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["image"] == image and image.startswith("mlstack-pipeline:")
    registration = kind.named("ray-search-raycluster")
    deps = {kind.by_urn(u).name for u in registration.dependencies}
    assert {"kuberay-operator", "workloads-namespace", "image-pipeline"} <= deps
    gke_image = _cluster(runs["gke"])["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    assert gke_image == f"{REGISTRY}/{image}"  # pushed to the cloud stack's registry


def test_sized_by_the_profile(runs: dict[str, mocks.Run]) -> None:
    laptop = _cluster(runs["kind"])["spec"]
    head = laptop["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["resources"] == LAPTOP["kuberay.head"].resources()
    # Laptop: no workers; the head runs the trials (KubeRay derives num-cpus from its CPU limit).
    assert "workerGroupSpecs" not in laptop and "num-cpus" not in head["rayStartParams"]
    full = _cluster(runs["gke"])["spec"]
    assert full["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"] == FULL["kuberay.head"].resources()
    assert full["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # the head only drives; workers run trials
    (workers,) = full["workerGroupSpecs"]
    n = FULL["kuberay.worker"].replicas
    assert n >= 1 and workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == n
    assert workers["template"]["spec"]["containers"][0]["resources"] == FULL["kuberay.worker"].resources()
    for params in (head["rayStartParams"], workers["rayStartParams"]):
        assert all(isinstance(v, str) for v in params.values())  # the CRD's rayStartParams is a string map


def test_head_exposes_the_jobs_api_and_runs_non_root(runs: dict[str, mocks.Run]) -> None:
    for run in runs.values():
        spec = _cluster(run)["spec"]
        head = spec["headGroupSpec"]
        container = head["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        # KubeRay's head Service ``<cluster>-head-svc`` carries exactly these ports.
        assert ports == {"gcs-server": 6379, "dashboard": 8265, "metrics": 8080}
        assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
        assert container["readinessProbe"]["httpGet"] == {"path": "/api/gcs_healthz", "port": 8265}
        templates = [head["template"], *(w["template"] for w in spec.get("workerGroupSpecs", []))]
        for template in templates:
            pod = template["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
            assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "mlstack-workload"
            security = pod["containers"][0]["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
            assert "wget" not in json.dumps(pod)  # the image has no wget: KubeRay's own probes would fail


def test_kfp_reaches_the_head_on_the_jobs_port_only(runs: dict[str, mocks.Run]) -> None:
    for run in runs.values():
        (policy,) = [
            r.inputs
            for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if r.inputs["metadata"]["name"] == "allow-pipelines-ray-jobs"
        ]
        assert policy["metadata"]["namespace"] == "mlstack"
        assert policy["spec"]["podSelector"] == {
            "matchLabels": {"ray.io/cluster": "mlstack-search", "ray.io/node-type": "head"}
        }
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 8265}]
        assert rule["from"] == [
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kubeflow"]}
                    ]
                }
            }
        ]


def test_scheduled_runs_search_on_the_cluster(runs: dict[str, mocks.Run]) -> None:
    for run in runs.values():
        for component in ("fraud", "demand"):
            args = _upload_args(run, component)
            assert args[args.index("--ray-address") + 1] == ADDRESS == kuberay.search_address("mlstack")


def test_without_kuberay_no_cluster_and_the_search_stays_in_the_step() -> None:
    services = [s for s in SERVICES if s != "kuberay"]
    run = mocks.run(_with("kind", services=json.dumps(services)))
    assert not run.of_type(RAY_CLUSTER) and not run.of_type("mlstack:components:RaySearchCluster")
    assert "--ray-address" not in _upload_args(run)
    names = {r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert "allow-pipelines-ray-jobs" not in names


def test_no_cluster_without_components() -> None:
    assert not mocks.run(stack_config("kind")).of_type(RAY_CLUSTER)


def test_no_rights_for_a_rayjob_path() -> None:
    """The step talks HTTP to the Jobs API: no role grants ray.io resources or pod logs; KFP's runner is bound to
    nothing in the workloads namespace."""
    from infra.services.workloads_namespace import ROLES

    run = mocks.run(stack_config("kind"))
    for registration in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role"):
        for rule in registration.inputs["rules"]:
            assert "ray.io" not in rule["apiGroups"] and "pods/log" not in rule["resources"]
    for binding in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"):
        if binding.inputs["metadata"]["namespace"] == "mlstack":
            assert all(s["namespace"] == "mlstack" for s in binding.inputs["subjects"])
    assert "mlstack-trainer" not in ROLES


class _FakeKfp:
    def __init__(self) -> None:
        self.recurring: list[dict[str, Any]] = []

    def list_experiments(self, page_size: int) -> None:
        return None

    def get_pipeline_id(self, name: str) -> str:
        return "p"

    def list_pipeline_versions(self, pipeline_id: str, page_size: int) -> Any:
        return SimpleNamespace(pipeline_versions=[])

    def upload_pipeline_version(self, *args: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(pipeline_version_id="v", display_name=kwargs["pipeline_version_name"])

    def create_experiment(self, name: str) -> Any:
        return SimpleNamespace(experiment_id="e")

    def list_recurring_runs(self, experiment_id: str) -> Any:
        return SimpleNamespace(recurring_runs=[])

    def create_recurring_run(self, **kwargs: Any) -> None:
        self.recurring.append(kwargs)


@pytest.mark.parametrize("ray_address", [ADDRESS, ""])
def test_upload_passes_the_address_as_the_runs_parameter(
    ray_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _FakeKfp()
    monkeypatch.setitem(sys.modules, "kfp", SimpleNamespace(Client=lambda host: server))
    package = tmp_path / "pipeline.yaml"
    package.write_text("pipelineInfo: {name: mlstack-training}\n")
    argv = ["--host", "http://kfp", "--package", str(package), "--component", "fraud", "--mlflow-uri", "m"]
    argv += ["--feast-repo", "/f", "--offline-root", "s3://b/fraud", "--schedule", "0 0 3 * * *"]
    assert pipeline_upload.main([*argv, "--ray-address", ray_address]) == 0
    (run,) = server.recurring
    if ray_address:
        assert run["params"]["ray_address"] == ray_address
    else:  # the pipeline's default (empty: the search runs in the step's pod)
        assert "ray_address" not in run["params"]


def test_ray_address_is_a_parameter_of_the_compiled_pipeline(tmp_path: Path) -> None:
    """The name the schedule passes is the pipeline's own input (a wrong name would be rejected by KFP)."""
    import yaml

    from pipelines.training.runner import compile_pipeline

    ir = yaml.safe_load(compile_pipeline(tmp_path, "mlstack-pipeline:x").read_text())
    assert "ray_address" in ir["root"]["inputDefinitions"]["parameters"]


def test_ray_version_and_dashboard_in_the_image_lock() -> None:
    """The Jobs API needs the same Ray on both ends and the dashboard's packages (``ray[default]``): without them
    ``ray start --head`` starts a minimal dashboard with no HTTP server and nothing listens on 8265."""
    lock = (ROOT / "requirements" / "main.txt").read_text()
    pinned = {
        line.split("==")[0].lower(): line.split("==")[1].split()[0]
        for line in lock.splitlines()
        if "==" in line and not line.startswith(" ")
    }
    assert pinned["ray"] == kuberay.RAY_VERSION
    # Every module Ray's dashboard requires (ray/dashboard/optional_deps.py of the installed Ray) is in the lock.
    import ray.dashboard

    deps = Path(ray.dashboard.__file__).with_name("optional_deps.py")
    modules = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(deps.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    distributions = {
        "aiohttp": "aiohttp",
        "aiohttp_cors": "aiohttp-cors",
        "grpc": "grpcio",
        "opencensus": "opencensus",
        "opentelemetry": "opentelemetry-exporter-prometheus",
        "prometheus_client": "prometheus-client",
        "pydantic": "pydantic",
    }
    assert modules <= set(distributions), modules - set(distributions)
    assert {distributions[m] for m in modules} <= set(pinned)
