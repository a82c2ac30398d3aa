"""Per-component resources: each use-case component in ``mlstack:components`` becomes one ``UseCase``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from contract.registry import load
from infra import images
from infra.config import StackConfig
from infra.services import Platform
from infra.services.base import WORKLOADS_NAMESPACE
from infra.services.feast import FeatureStore
from infra.services.kafka import CLUSTER_NAME
from infra.services.kuberay import KubeRay, SearchCluster, search_address
from infra.services.mlflow import Mlflow
from infra.use_cases.manifests import Endpoints
from infra.use_cases.retrain_trigger import RetrainTrigger, trigger_objects
from infra.use_cases.use_case import PlatformHandles, UseCase, UseCaseArgs

__all__ = [
    "Endpoints",
    "PlatformHandles",
    "ProjectImages",
    "UseCase",
    "UseCaseArgs",
    "build_use_cases",
    "platform_endpoints",
]


def platform_endpoints(platform: Platform) -> Endpoints:
    """Service addresses of the platform (the same values its services export)."""
    ns = {name: svc.args.namespace for name, svc in platform.services.items()}
    return Endpoints(
        kafka_bootstrap=f"{CLUSTER_NAME}-kafka-bootstrap.{ns['kafka']}.svc.cluster.local:9092",
        feast_db_host=f"feast-postgres.{ns['feast']}.svc.cluster.local",
        feast_redis=f"feast-redis.{ns['feast']}.svc.cluster.local:6379",
        mlflow_uri=f"http://mlflow.{ns['mlflow']}.svc.cluster.local:5000",
        s3_endpoint=f"http://mlflow-s3.{ns['mlflow']}.svc.cluster.local:8333",
        kfp_api=f"http://ml-pipeline.{ns['kubeflow-pipelines']}.svc.cluster.local:8888",
        ray_address=search_address(WORKLOADS_NAMESPACE) if "kuberay" in ns else "",
    )


def _handles(platform: Platform) -> PlatformHandles:
    s: dict[str, Any] = platform.services
    workloads = s["workloads"]
    return PlatformHandles(
        kafka=[s["kafka"].cluster],
        flink=[s["flink"].release],
        feast=[s["feast"].database, s["feast"].redis, s["feast"].server],
        mlflow=[s["mlflow"].release],
        kubeflow=[s["kubeflow-pipelines"].environment],
        kserve=[s["kserve"].controller],
        namespace=[workloads.namespace] if workloads.namespace is not None else [],
    )


@dataclass(frozen=True)
class ProjectImages:
    """The project's image references and, with ``images: build``, the resources building them."""

    shared: dict[str, str]
    """Shared images' references by name (``streaming``; ``pipeline`` holds every component)."""
    components: dict[str, dict[str, str]]
    """Per component: the references its pods run, by role (``streaming``, ``serving``, ``pipeline``)."""
    built: dict[str, pulumi.Resource]
    """Build resources by image reference (empty with ``images: prebuilt``)."""

    def builds(self, refs: Iterable[str]) -> list[pulumi.Resource]:
        """The build resources of ``refs``: a pod waits for its own images only."""
        return [self.built[ref] for ref in dict.fromkeys(refs) if ref in self.built]


def project_images(
    config: StackConfig,
    provider_deps: list[pulumi.Resource],
    parent: pulumi.Resource | None = None,
    *,
    search: bool = False,
) -> ProjectImages:
    """References of the configured components' images (content tags; one serving and one pipeline image per
    component, so adding or changing one component changes no other's) and, with ``images: build``, the resources
    building them; ``search`` adds the all-components pipeline image the shared search cluster runs."""
    specs = {"streaming": images.IMAGES["streaming"], **({"pipeline": images.IMAGES["pipeline"]} if search else {})}
    per_component = {ref.name: images.component_images(ref.name) for ref in config.components}
    every = {images.resource_name(spec): spec for spec in specs.values()}
    every.update({images.resource_name(s): s for roles in per_component.values() for s in roles.values()})
    refs = {name: images.reference(spec, config.image_registry) for name, spec in every.items()}
    result = ProjectImages(
        shared={role: refs[images.resource_name(spec)] for role, spec in specs.items()},
        components={
            c: {role: refs[images.resource_name(spec)] for role, spec in roles.items()}
            for c, roles in per_component.items()
        },
        built={},
    )
    if config.images != "build":
        return result
    kind_cluster = config.kind.name if config.kind is not None else None
    for name, spec in every.items():
        result.built[refs[name]] = images.ProjectImage(
            name, spec, refs[name], kind_cluster, pulumi.ResourceOptions(depends_on=provider_deps, parent=parent)
        )
    return result


def retrain_trigger(
    config: StackConfig, platform: Platform, provider: k8s.Provider, endpoints: Endpoints, project: ProjectImages
) -> RetrainTrigger:
    """The retraining trigger beside Prometheus, acting on every configured component (``retrain_trigger``)."""
    image, namespaces = project.shared["pipeline"], {n: s.args.namespace for n, s in platform.services.items()}
    manifests = trigger_objects(
        [ref.name for ref in config.components],
        image,
        endpoints,
        namespaces["prometheus"],
        mlflow_namespace=namespaces["mlflow"],
        kfp_namespace=namespaces["kubeflow-pipelines"],
        retraining=config.retraining,
    )
    prometheus = platform.services["prometheus"]
    waits = [*([prometheus.namespace] if prometheus.namespace is not None else []), *project.builds([image])]
    return RetrainTrigger("retrain-trigger", manifests, provider, waits)


def build_use_cases(
    config: StackConfig, platform: Platform, provider: k8s.Provider, cluster_resources: list[pulumi.Resource]
) -> dict[str, UseCase]:
    """The use cases' resources: one ``UseCase`` per configured component, wired to the platform's outputs (and,
    with KubeRay, the search cluster they share)."""
    if not config.components:
        return {}
    kuberay, prometheus = platform.services.get("kuberay"), platform.services.get("prometheus")
    # The all-components pipeline image runs the search cluster (KubeRay) and the retraining trigger (Prometheus).
    shared_pipeline = isinstance(kuberay, KubeRay) or prometheus is not None
    project = project_images(config, cluster_resources, search=shared_pipeline)
    feast, mlflow = platform.services["feast"], platform.services["mlflow"]
    if not isinstance(feast, FeatureStore) or not isinstance(mlflow, Mlflow):
        raise TypeError(f"platform services 'feast' and 'mlflow' are {type(feast)} and {type(mlflow)}")
    credentials = {
        "feast-db-password": feast.db_password.result,
        "redis-password": feast.redis_password.result,
        "s3-access-key": mlflow.s3_access_key.result,
        "s3-secret-key": mlflow.s3_secret_key.result,
    }
    endpoints, handles = platform_endpoints(platform), _handles(platform)
    if isinstance(kuberay, KubeRay):
        # One search cluster for every component, on the all-components pipeline image (their code, the search
        # step's packages): the one image a new component changes besides its own.
        search_image = project.shared["pipeline"]
        SearchCluster(
            "ray-search",
            WORKLOADS_NAMESPACE,
            search_image,
            config.profile,
            provider,
            [kuberay.release, *handles.namespace, *project.builds([search_image])],
        )
    if prometheus is not None:
        retrain_trigger(config, platform, provider, endpoints, project)
    use_cases = {}
    for ref in config.components:
        refs = project.components[ref.name]
        use_cases[ref.name] = UseCase(
            ref.name,
            UseCaseArgs(
                component=load(ref.name),
                provider=provider,
                namespace=WORKLOADS_NAMESPACE,
                endpoints=endpoints,
                credentials=credentials,
                images=refs,
                platform=handles,
                image_resources=project.builds(refs.values()),
                version=ref.version,
                kafka_namespace=platform.services["kafka"].args.namespace,
                topic_replicas=config.profile.kafka_replication,
                schedule=config.training_schedule,
                pipeline_namespace=platform.services["kubeflow-pipelines"].args.namespace,
                monitoring_namespace=platform.services["prometheus"].args.namespace
                if "prometheus" in platform.services
                else "",
            ),
        )
    return use_cases
