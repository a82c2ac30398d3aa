"""Per-component resources under ``pulumi.runtime.Mocks``: a component in ``mlstack:components`` yields exactly its
resources (topics, Flink job, Feast repo + apply Job + pusher, pipeline upload, InferenceService) wired to the
platform's outputs and waiting on the platform pieces they use; removing it removes them; two components do not
collide; the config key fails naming itself; every pod runs its component's images."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from contract.registry import load
from contract.streaming import topics as topics_of
from infra import images
from infra.config import ConfigError, parse
from tests.support import pulumi_mocks as mocks
from tests.unit.test_infra_config import stack_config
from tests.unit.test_infra_retrain_trigger import ROLES as TRIGGER_ROLES

UPSTREAM_OR_BUILD = ("kubernetes:helm.sh/v4:Chart", "kubernetes:kustomize/v2:Directory")
ROLES = {
    ("mlstack:components:UseCase", ""),
    ("kubernetes:core/v1:Secret", "credentials"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "clients-no-ingress"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-events"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-features"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-dead-letter"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-predictions"),
    ("kubernetes:core/v1:ConfigMap", "streaming-spec"),
    ("kubernetes:flink.apache.org/v1beta1:FlinkDeployment", "flink"),
    ("kubernetes:core/v1:ConfigMap", "feast-repo"),
    ("kubernetes:batch/v1:Job", "feast-apply"),
    ("kubernetes:apps/v1:Deployment", "feature-pusher"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "feature-pusher-scrape"),
    ("kubernetes:apps/v1:Deployment", "event-archive"),
    ("kubernetes:core/v1:ConfigMap", "pipeline"),
    ("kubernetes:core/v1:Secret", "pipeline-credentials"),
    ("kubernetes:core/v1:ConfigMap", "pipeline-feast-repo"),
    ("kubernetes:batch/v1:Job", "pipeline-upload"),
    ("kubernetes:serving.kserve.io/v1beta1:InferenceService", "isvc"),
}
FEEDBACK_ROLES = {
    # Labels arrive as their own events, and the monitor joins them to the served predictions.
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-labels"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-scored"),
    ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "topic-predictions-dead-letter"),
    ("kubernetes:flink.apache.org/v1beta1:FlinkDeployment", "monitor"),
    ("kubernetes:core/v1:ServiceAccount", "monitor-exporter-account"),
    ("kubernetes:apps/v1:Deployment", "monitor-exporter"),
    ("kubernetes:core/v1:Service", "monitor-exporter-service"),
    ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "monitor-exporter-scrape"),
}


def roles_of(component: str) -> set[tuple[str, str]]:
    """The resources a use case registers: every component's, plus the feedback ones when it declares feedback."""
    return ROLES | (FEEDBACK_ROLES if load(component).streaming.feedback is not None else set())


def _with(components: list[str], stack: str = "kind", **extra: str) -> dict[str, str]:
    return {**stack_config(stack), "components": json.dumps(components), **extra}


@pytest.fixture(scope="module")
def bare() -> mocks.Run:
    return mocks.run(stack_config("kind"))


@pytest.fixture(scope="module")
def both() -> mocks.Run:
    return mocks.run(_with(["fraud", "demand@3"]))


@pytest.fixture(scope="module")
def fraud_only() -> mocks.Run:
    return mocks.run(_with(["fraud"]))


def _owned(run: mocks.Run, component: str) -> list[mocks.Registration]:
    root = run.named(component)
    return [root, *(r for r in run.registrations if r.parent == root.urn)]


def _roles(run: mocks.Run, component: str) -> set[tuple[str, str]]:
    return {(r.typ, r.name.removeprefix(component).removeprefix("-")) for r in _owned(run, component)}


def test_a_component_yields_exactly_its_resources(both: mocks.Run) -> None:
    assert _roles(both, "fraud") == roles_of("fraud")
    assert _roles(both, "demand") == roles_of("demand")
    assert sorted(r.name for r in both.of_type("mlstack:components:UseCase")) == ["demand", "fraud"]


def test_removing_a_component_removes_its_resources(bare: mocks.Run, fraud_only: mocks.Run, both: mocks.Run) -> None:
    def names(run: mocks.Run) -> Counter[tuple[str, str]]:
        return Counter((r.typ, r.name) for r in run.registrations)

    assert not bare.of_type("mlstack:components:UseCase")
    assert not [r for r in bare.registrations if r.typ.startswith("pulumi-python:dynamic:Resource")]
    added = names(fraud_only) - names(bare)
    # Its own serving and pipeline images, the shared streaming one and the search cluster's (every component's).
    image_names = ("image-serving-fraud", "image-pipeline-fraud", "image-streaming", "image-pipeline")
    images_built = {("pulumi-python:dynamic:Resource", name) for name in image_names}
    # With the first component, the Ray cluster every component's search runs on (infra/services/kuberay.py).
    search = {
        ("mlstack:components:RaySearchCluster", "ray-search"),
        ("kubernetes:ray.io/v1:RayCluster", "ray-search-raycluster"),
    }
    # With the first component, the retraining trigger beside Prometheus (infra/use_cases/retrain_trigger.py).
    trigger = {("mlstack:components:RetrainTrigger", "retrain-trigger")}
    trigger |= {(t, f"retrain-trigger-{role}") for t, role in TRIGGER_ROLES}
    fraud = {(t, f"fraud-{role}" if role else "fraud") for t, role in roles_of("fraud")}
    assert set(added) == fraud | images_built | search | trigger
    assert names(bare) - names(fraud_only) == Counter()  # the platform itself is unchanged
    demand = set(names(both) - names(fraud_only))
    assert all(name.startswith(("demand", "image-serving-demand", "image-pipeline-demand")) for _, name in demand)


def _kubernetes_objects(run: mocks.Run) -> list[mocks.Registration]:
    return [r for r in run.registrations if r.typ.startswith("kubernetes:") and r.typ not in UPSTREAM_OR_BUILD]


def test_two_components_do_not_collide(both: mocks.Run) -> None:
    keys = Counter(
        (r.typ, r.inputs["metadata"].get("namespace", ""), r.inputs["metadata"]["name"])
        for r in _kubernetes_objects(both)
        if "metadata" in r.inputs
    )
    assert [k for k, n in keys.items() if n > 1] == []
    topics = [r.inputs["spec"]["topicName"] for r in both.of_type("kubernetes:kafka.strimzi.io/v1:KafkaTopic")]
    expected = [
        t for c in ("fraud", "demand") for t in topics_of(c, labels=load(c).streaming.feedback is not None).values()
    ]
    assert sorted(topics) == sorted(expected)
    for component in ("fraud", "demand"):
        for r in _owned(both, component)[1:]:
            metadata = r.inputs["metadata"]
            assert metadata["name"].startswith(component), r.name
            if r.typ.endswith(":KafkaTopic"):
                continue
            assert metadata["labels"]["mlstack.io/component"] == component, r.name


def _depends(run: mocks.Run, dependent: str, *on: str) -> None:
    deps = set(run.named(dependent).dependencies)
    missing = [name for name in on if run.named(name).urn not in deps]
    assert missing == [], f"{dependent} does not depend on {missing}"


def test_each_part_waits_for_the_platform_pieces_it_uses(fraud_only: mocks.Run) -> None:
    run = fraud_only
    for topic in ("events", "features", "dead-letter"):
        _depends(run, f"fraud-topic-{topic}", "kafka-cluster")
    _depends(
        run,
        "fraud-flink",
        "flink-operator",
        "fraud-topic-events",
        "fraud-topic-features",
        "fraud-streaming-spec",
        "fraud-credentials",
        "image-streaming",
    )
    _depends(run, "fraud-feast-apply", "feast-postgres", "feast-redis", "feast-server", "fraud-credentials")
    _depends(run, "fraud-feast-apply", "fraud-feast-repo", "image-pipeline-fraud")
    _depends(run, "fraud-feature-pusher", "fraud-feast-apply", "fraud-topic-features")
    _depends(run, "fraud-event-archive", "fraud-topic-events", "fraud-credentials", "image-pipeline-fraud")
    _depends(run, "fraud-pipeline-upload", "kubeflow-platform-agnostic", "fraud-pipeline", "fraud-feast-apply")
    _depends(run, "fraud-pipeline-credentials", "kubeflow-platform-agnostic")
    _depends(run, "fraud-pipeline", "fraud-pipeline-credentials", "fraud-pipeline-feast-repo")
    _depends(run, "fraud-isvc", "kserve-controller", "mlflow-chart", "fraud-feast-apply", "image-serving-fraud")
    provider = next(r.urn for r in run.registrations if r.typ == "pulumi:providers:kubernetes")
    for r in _owned(run, "fraud")[1:]:
        assert r.provider.startswith(provider + "::"), r.name


def test_wired_to_platform_outputs(fraud_only: mocks.Run) -> None:
    run, out = fraud_only, fraud_only.outputs
    flink = run.named("fraud-flink").inputs["spec"]
    args = flink["job"]["args"]
    assert args[args.index("--bootstrap") + 1] == out["kafkaBootstrap"]
    assert flink["podTemplate"]["spec"]["volumes"][0]["configMap"]["name"] == "fraud-streaming-spec"
    spec = json.loads(run.named("fraud-streaming-spec").inputs["data"]["spec.json"])
    assert spec["component"] == "fraud" and spec["topics"]["events"] == "fraud.events"
    assert flink["job"]["parallelism"] == spec["partitions"] or flink["job"]["parallelism"] >= 1
    for topic in run.of_type("kubernetes:kafka.strimzi.io/v1:KafkaTopic"):
        assert topic.inputs["metadata"]["namespace"] == "kafka"
        assert topic.inputs["metadata"]["labels"]["strimzi.io/cluster"] == "mlstack"
        assert topic.inputs["spec"]["partitions"] == spec["partitions"]
    isvc = run.named("fraud-isvc").inputs
    server_args = isvc["spec"]["predictor"]["containers"][0]["args"]
    assert server_args[server_args.index("--mlflow-uri") + 1] == out["mlflowTrackingUri"]
    assert isvc["metadata"]["namespace"] == out["workloadsNamespace"]
    repo = yaml.safe_load(run.named("fraud-feast-repo").inputs["data"]["feature_store.yaml"])
    assert repo["project"] == "fraud"
    assert repo["registry"]["path"].endswith(out["feastRegistry"].split("@", 1)[1])
    assert repo["online_store"]["connection_string"].startswith(out["feastOnlineStore"] + ",password=${")
    upload = run.named("fraud-pipeline-upload").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert upload[upload.index("--host") + 1] == out["kubeflowPipelinesApi"]
    assert "--schedule" not in upload
    assert out["fraudInferenceService"] == "mlstack/fraud"


def test_flink_state_lives_in_a_bucket_the_platform_creates(fraud_only: mocks.Run) -> None:
    """Checkpoints and HA metadata in object storage (any node's TaskManager reaches them; a ReadWriteOnce
    volume would pin the job to one node), in a bucket the MLflow chart creates, like the features' history."""
    run = fraud_only
    flink = run.named("fraud-flink").inputs["spec"]
    config, args = flink["flinkConfiguration"], flink["job"]["args"]
    assert config["execution.checkpointing.dir"] == args[args.index("--checkpoints") + 1]
    assert config["execution.checkpointing.dir"].startswith("s3://mlstack-flink/fraud/")
    assert config["high-availability.type"] == "kubernetes"
    assert config["high-availability.storageDir"].startswith("s3://mlstack-flink/fraud/")
    pusher = run.named("fraud-feature-pusher").inputs["spec"]["template"]["spec"]["containers"][0]
    assert config["s3.endpoint"] == {e["name"]: e.get("value") for e in pusher["env"]}["AWS_ENDPOINT_URL"]
    env = {e["name"]: e for e in flink["podTemplate"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "fraud-credentials"
    claims = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert [c.name for c in claims] == ["retrain-trigger-log"], "only the retraining trigger's decision log"
    offline_root = pusher["args"][pusher["args"].index("--offline-root") + 1]
    # Training reads the raw events beside the feature history: the archive writes them there.
    archive = run.named("fraud-event-archive").inputs["spec"]["template"]["spec"]["containers"][0]
    assert archive["args"][archive["args"].index("--offline-root") + 1] == offline_root
    assert archive["command"] == ["python", "-m", "pipelines.streaming.event_archive"]
    buckets = run.named("mlflow-chart").inputs["values"]["s3"]["extraBuckets"]
    assert {"mlstack-flink", offline_root.removeprefix("s3://").split("/")[0]} <= set(buckets)


def test_credentials_are_the_platforms_generated_secrets(fraud_only: mocks.Run) -> None:
    secret = fraud_only.named("fraud-credentials")
    assert "stringData" in secret.secret_paths
    generated = {p.name: p.inputs["result"] for p in fraud_only.of_type(mocks.PASSWORD_TYPE)}
    assert secret.inputs["stringData"] == {
        "feast-db-password": generated["feast-db-password"],
        "redis-password": generated["feast-redis-password"],
        "s3-access-key": generated["mlflow-s3-access-key"],
        "s3-secret-key": generated["mlflow-s3-secret-key"],
    }
    for name in ("fraud-feast-repo", "fraud-pipeline", "fraud-streaming-spec"):
        text = json.dumps(fraud_only.named(name).inputs)
        assert not any(value in text for value in generated.values()), name


def test_images_are_content_tagged_and_used_by_every_pod(fraud_only: mocks.Run) -> None:
    refs = {role: images.reference(spec) for role, spec in images.component_images("fraud").items()}
    assert refs["serving"].startswith("mlstack-serving:fraud-")
    assert refs["pipeline"].startswith("mlstack-pipeline:fraud-")
    assert fraud_only.named("fraud-flink").inputs["spec"]["image"] == refs["streaming"]
    isvc = fraud_only.named("fraud-isvc").inputs["spec"]["predictor"]["containers"][0]
    assert isvc["image"] == refs["serving"]
    job = fraud_only.named("fraud-feast-apply").inputs["spec"]["template"]["spec"]["containers"][0]
    assert job["image"] == refs["pipeline"]
    package = fraud_only.named("fraud-pipeline").inputs["data"]["pipeline.yaml"]
    executors = next(yaml.safe_load_all(package))["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {refs["pipeline"]}
    built = {r.name: r.inputs for r in fraud_only.registrations if r.name.startswith("image-")}
    assert built["image-serving-fraud"]["ref"] == refs["serving"]
    assert built["image-serving-fraud"]["commands"][-1] == [
        "kind",
        "load",
        "docker-image",
        refs["serving"],
        "--name",
        "mlstack",
    ]


def test_pipeline_steps_get_the_repo_and_credentials_in_kfps_namespace(fraud_only: mocks.Run) -> None:
    spec, platform = yaml.safe_load_all(fraud_only.named("fraud-pipeline").inputs["data"]["pipeline.yaml"])
    executors = spec["deploymentSpec"]["executors"]
    configs = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(configs) == set(executors) == {"exec-training-set", "exec-search", "exec-register"}
    names = ("fraud-pipeline-credentials", "fraud-pipeline-feast-repo")
    copies = {name: fraud_only.named(name).inputs["metadata"] for name in names}
    assert {m["namespace"] for m in copies.values()} == {"kubeflow"}
    for name, config in configs.items():
        (volume,) = config["configMapAsVolume"]
        assert volume["configMapName"] == copies["fraud-pipeline-feast-repo"]["name"] == "fraud-feast-repo"
        assert volume["mountPath"] == "/opt/mlstack/feast"
        (secret,) = config["secretAsEnv"]
        assert secret["secretName"] == copies["fraud-pipeline-credentials"]["name"] == "fraud-credentials"
        assert {e["envVar"] for e in secret["keyToEnv"]} >= {"FEAST_DB_PASSWORD", "REDIS_PASSWORD"}
        env = {e["name"]: e["value"] for e in executors[name]["container"]["env"]}
        assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://mlflow-s3.mlflow.svc.cluster.local:8333", name
    step_repo = fraud_only.named("fraud-pipeline-feast-repo").inputs["data"]
    assert step_repo == fraud_only.named("fraud-feast-repo").inputs["data"]
    assert "stringData" in fraud_only.named("fraud-pipeline-credentials").secret_paths


def test_prebuilt_images_and_a_schedule() -> None:
    run = mocks.run(_with(["fraud"], images="prebuilt", trainingSchedule="0 0 3 * * *"))
    assert not [r for r in run.registrations if r.name.startswith("image-")]
    upload = run.named("fraud-pipeline-upload").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert upload[upload.index("--schedule") + 1] == "0 0 3 * * *"


def test_cloud_stack_pushes_to_its_registry() -> None:
    registry = "europe-west4-docker.pkg.dev/mlstack-demo/mlstack"
    run = mocks.run(_with(["fraud"], stack="gke", imageRegistry=registry), stack_name="gke")
    built = {r.name: r.inputs for r in run.registrations if r.name.startswith("image-")}
    ref = built["image-serving-fraud"]["ref"]
    assert ref.startswith(registry + "/mlstack-serving:fraud-")
    assert built["image-serving-fraud"]["commands"][-1] == ["docker", "push", ref]
    assert run.named("fraud-topic-events").inputs["spec"]["replicas"] == 3  # the full profile's replication


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"components": '["churn"]'}, "components", "unknown component 'churn'; available: "),
        ({"components": '["fraud", "fraud@2"]'}, "components", "listed twice"),
        ({"components": '["fraud@v2"]'}, "components", "<name> or <name>@<version>"),
        ({"components": "fraud"}, "components", "list of component names"),
        ({"components": '["fraud"]', "services": '["kafka"]'}, "components", "need the 'flink' service"),
        ({"images": "pull"}, "images", "expected one of build, prebuilt"),
        ({"trainingSchedule": "every day"}, "trainingSchedule", "cron expression"),
        ({"imageRegistry": "https://x"}, "imageRegistry", "a registry"),
    ],
)
def test_bad_component_config_names_the_key(raw: dict[str, str], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^mlstack:{key}: ") as caught:
        parse(raw)
    assert message in str(caught.value)


def test_cloud_build_without_registry_fails_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^mlstack:imageRegistry: required"):
        parse({**stack_config("gke"), "components": '["fraud"]'})
    bad = mocks.RecordingMonitor(mocks.PlatformMocks())
    with pytest.raises(ConfigError):
        mocks.run(_with(["nope"]), monitor=bad)
    assert bad.registrations == []  # before any resource
