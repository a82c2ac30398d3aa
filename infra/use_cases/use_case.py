"""``UseCase``: everything one use-case component runs on the cluster, generated from its declarations.

Children (all ``<component>-<role>``, parented here, on the cluster's provider): the credentials Secret it reads
(copied from the platform's generated secrets), its Kafka topics, the streaming spec + Flink job (its state in the
object store), the Feast repo + ``feast apply`` Job + feature pusher + event archive, the compiled training
pipeline + upload Job, and the InferenceService of its champion. Each waits for exactly the platform pieces it
talks to.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from contract import Component
from contract.resources import WorkloadHint
from infra.services import objects
from infra.use_cases import manifests, monitoring, streaming, training
from infra.use_cases.manifests import Endpoints

ROLLOUT_OWNED = ("spec.predictor.canaryTrafficPercent", "spec.predictor.containers")
"""The InferenceService's fields `kubectl canary` owns after creation (serving/rollout/cluster_backend.py patches
them as field manager ``kubectl-canary``): Pulumi creates them, then never touches them, so `pulumi up` after a
rollout changes nothing and conflicts with nothing.

The whole ``containers`` list, not ``containers[0].args``: the provider applies with server-side apply
(``enable_server_side_apply`` on the cluster's provider), and there its ignoreChanges handling
(``handleSSAIgnoreFields``, provider/pkg/await/await.go) splits each path on "." and walks maps only
("TODO: Enhance support for ignoreField path to support nested arrays"), so ``containers[0].args`` matches nothing
and the update sends the whole list. The list is atomic (KServe's CRD gives ``spec.predictor.containers`` no
``x-kubernetes-list-type``, and the API server's schema conversion treats such a list as atomic: k8s.io/kube-openapi
pkg/schemaconv/smd.go, "Treat as atomic by default"), so after a rollout's merge patch
``kubectl-canary`` owns all of it: the apply then conflicts, or with patchForce reverts the rollout. A path of map
keys works: the field is dropped from the apply while another manager owns it, and kept at its live value while
Pulumi still does; and the diff (provider/pkg/provider/provider.go, ``Diff``) drops every change under it, so a
preview after a rollout, refreshed or not, plans nothing for the service. Checked at pulumi/pulumi-kubernetes
v4.32.0 and its main of 2026-07-01, the newest stored (``handleSSAIgnoreFields`` is unchanged there since #2566 of
2023; the pinned 4.34.2 is newer and was not readable here), and kserve/kserve@v0.16.0:charts/kserve-crd/templates/
serving.kserve.io_inferenceservices.yaml.

The price: the image, resources and env of a running service are no longer Pulumi's to change; a new serving
image reaches it by replacing the service (`pulumi up --replace <its urn>`), which restarts it on the version the
program names (the ``champion`` alias by default).
"""


@dataclass(frozen=True)
class PlatformHandles:
    """The platform resources each part of a component must wait for."""

    kafka: Sequence[pulumi.Resource]
    """The Kafka cluster (topics need its topic operator)."""
    flink: Sequence[pulumi.Resource]
    """The Flink operator (and the workloads namespace it watches)."""
    feast: Sequence[pulumi.Resource]
    """Feast's registry database, Redis and server."""
    mlflow: Sequence[pulumi.Resource]
    """MLflow's chart (tracking server, artifact store)."""
    kubeflow: Sequence[pulumi.Resource]
    """Kubeflow Pipelines' environment (API server)."""
    kserve: Sequence[pulumi.Resource]
    """KServe's controller (and Knative Serving)."""
    namespace: Sequence[pulumi.Resource]
    """The workloads namespace with its service accounts."""


@dataclass(frozen=True)
class UseCaseArgs:
    """What a ``UseCase`` needs from the stack."""

    component: Component
    """The validated component (``contract.registry.load``)."""
    provider: k8s.Provider
    """Kubernetes provider of the target cluster."""
    namespace: str
    """Workloads namespace (``infra.services.base.WORKLOADS_NAMESPACE``)."""
    endpoints: Endpoints
    """Addresses of the platform services."""
    credentials: Mapping[str, pulumi.Input[str]]
    """Secret outputs for ``manifests.CREDENTIALS_KEYS`` (Feast DB and Redis passwords, S3 key pair)."""
    images: Mapping[str, str]
    """Image references by image name (``streaming``, ``serving``, ``pipeline``)."""
    platform: PlatformHandles
    """Platform resources to depend on."""
    image_resources: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """The image builds (when the program builds them), before any pod that runs them."""
    version: str = ""
    """Model version the InferenceService starts on (empty: the champion alias)."""
    kafka_cluster: str = "mlstack"
    """Strimzi cluster name (the topics' ``strimzi.io/cluster`` label)."""
    kafka_namespace: str = "kafka"
    """Namespace the Strimzi topic operator watches."""
    topic_replicas: int = 1
    """Replication factor of the component's topics (the profile's)."""
    schedule: str = ""
    """Cron expression for a recurring training run; empty: none."""
    pipeline_namespace: str = "kubeflow"
    """Where Kubeflow Pipelines runs the pipeline's steps (they get copies of the repo and credentials there)."""
    monitoring_namespace: str = ""
    """Prometheus' namespace, let in to the monitor exporter's and the feature pusher's metrics ports (empty: no
    Prometheus deployed)."""


@functools.cache
def compiled_pipeline(image: str, training: WorkloadHint) -> str:
    """The training pipeline's IR YAML for ``image``, its search step sized by a component's ``training`` hint
    (``pipelines.training.runner.compile_pipeline``)."""
    from pipelines.training.runner import compile_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        return compile_pipeline(Path(tmp), image, training).read_text()


class UseCase(pulumi.ComponentResource):
    """One component's topics, streaming job, features, training pipeline and model server."""

    def __init__(self, name: str, args: UseCaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlstack:components:UseCase", name, None, opts)
        self.name = name
        self.args = args
        c, ns, ep = args.component, args.namespace, args.endpoints
        p = args.platform

        secret = objects.secret(manifests.credentials_secret(c.name), ns, dict(args.credentials))
        secret["metadata"]["labels"]["mlstack.io/component"] = c.name
        self.credentials = self._add("credentials", secret, p.namespace)
        self._add("clients-no-ingress", manifests.client_network_policy(c, ns), p.namespace)
        topics = streaming.kafka_topics(c, args.kafka_namespace, args.kafka_cluster, args.topic_replicas)
        self.topics = [self._add(f"topic-{role}", topic, p.kafka) for role, topic in topics.items()]
        streaming_image = args.images["streaming"]
        spec = self._add("streaming-spec", streaming.spec_config_map(c, ns), p.namespace)
        self.flink = self._add(
            "flink",
            streaming.flink_deployment(c, ns, streaming_image, ep),
            [*p.flink, *self.topics, spec, self.credentials, *args.image_resources],
        )
        if monitoring.monitored(c):
            # Predictions joined with their labels, and the exporter of what the windows of them show.
            self.monitor = self._add(
                "monitor",
                monitoring.monitor_deployment(c, ns, streaming_image, ep),
                [*p.flink, *self.topics, spec, self.credentials, *args.image_resources],
            )
            exporter = monitoring.exporter_objects(c, ns, args.images["pipeline"], ep, args.monitoring_namespace)
            for role, manifest in exporter.items():
                self._add(role, manifest, [*p.namespace, *self.topics, self.credentials, *args.image_resources])

        repo_manifest = manifests.feast_repo_config_map(c, ns, ep)
        repo = self._add("feast-repo", repo_manifest, p.namespace)
        pipeline_image = args.images["pipeline"]
        self.feast_apply = self._add(
            "feast-apply",
            manifests.feast_apply_job(c, ns, pipeline_image, repo_manifest, ep),
            [*p.feast, self.credentials, repo, *args.image_resources],
            replace_on_changes=["*"],
        )
        self.pusher = self._add(
            "feature-pusher",
            streaming.feature_pusher(c, ns, pipeline_image, ep),
            [*self.topics, self.feast_apply],
        )
        self._add(
            "feature-pusher-scrape", streaming.pusher_scrape_policy(c, ns, args.monitoring_namespace), p.namespace
        )
        self.archive = self._add(
            "event-archive",
            streaming.event_archive(c, ns, pipeline_image, ep),
            [*self.topics, self.credentials, *args.image_resources],
        )

        # The pipeline's steps run in KFP's namespace: they read the same repo and credentials from copies there.
        kfp_ns = args.pipeline_namespace
        secret_copy = objects.secret(manifests.credentials_secret(c.name), kfp_ns, dict(args.credentials))
        secret_copy["metadata"]["labels"]["mlstack.io/component"] = c.name
        step_credentials = self._add("pipeline-credentials", secret_copy, p.kubeflow)
        repo_copy = manifests.feast_repo_config_map(c, kfp_ns, ep)
        step_repo = self._add("pipeline-feast-repo", repo_copy, p.kubeflow)
        package = training.pipeline_package(c, compiled_pipeline(pipeline_image, c.resources.training), ep)
        pipeline = self._add(
            "pipeline", training.pipeline_config_map(c, ns, package), [*p.namespace, step_credentials, step_repo]
        )
        self.pipeline_upload = self._add(
            "pipeline-upload",
            training.pipeline_upload_job(c, ns, pipeline_image, package, ep, args.schedule),
            [*p.kubeflow, pipeline, self.feast_apply, *args.image_resources],
            replace_on_changes=["*"],
        )

        self.inference_service = self._add(
            "isvc",
            manifests.champion_service(c, ns, args.images["serving"], args.version, ep),
            [*p.kserve, *p.mlflow, self.feast_apply, self.credentials, *args.image_resources],
            ignore_changes=list(ROLLOUT_OWNED),
        )
        self.endpoints: dict[str, pulumi.Output[str]] = {
            "topics": pulumi.Output.from_input(",".join(t for t in _topic_names(c))),
            "flink_job": pulumi.Output.from_input(f"{ns}/{c.name}-features"),
            "inference_service": pulumi.Output.from_input(f"{ns}/{c.name}"),
            "pipeline": pulumi.Output.from_input(f"mlstack-training-{c.name}"),
        }
        self.register_outputs(dict(self.endpoints))

    def _add(
        self,
        role: str,
        manifest: objects.Manifest,
        depends_on: Sequence[pulumi.Resource],
        *,
        replace_on_changes: Sequence[str] = (),
        ignore_changes: Sequence[str] = (),
    ) -> pulumi.CustomResource:
        opts = pulumi.ResourceOptions(
            parent=self,
            provider=self.args.provider,
            depends_on=list(depends_on),
            replace_on_changes=list(replace_on_changes) or None,
            ignore_changes=list(ignore_changes) or None,
        )
        typed = _TYPED.get((manifest["apiVersion"], manifest["kind"]))
        if typed is not None:  # kinds infra.services.objects does not map (its generic path suits custom kinds only)
            body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
            resource: pulumi.CustomResource = typed(f"{self.name}-{role}", opts=opts, **body)
            return resource
        return objects.register(f"{self.name}-{role}", manifest, opts)


_TYPED: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("batch/v1", "Job"): k8s.batch.v1.Job,
}


def _topic_names(component: Component) -> list[str]:
    from contract.streaming import topics

    return list(topics(component.name, labels=component.streaming.feedback is not None).values())
