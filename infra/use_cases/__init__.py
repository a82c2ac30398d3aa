"""Per-component resources: each use-case component in ``mlstack:components`` becomes one ``UseCase``."""

from __future__ import annotations

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
from infra.use_cases.use_case import PlatformHandles, UseCase, UseCaseArgs

__all__ = ["Endpoints", "PlatformHandles", "UseCase", "UseCaseArgs", "build_use_cases", "platform_endpoints"]


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


def project_images(
    config: StackConfig, provider_deps: list[pulumi.Resource], parent: pulumi.Resource | None = None
) -> tuple[dict[str, str], list[pulumi.Resource]]:
    """References of the project's images (content tags) and, with ``images: build``, the resources building them."""
    refs = {name: images.reference(spec, config.image_registry) for name, spec in images.IMAGES.items()}
    if config.images != "build":
        return refs, []
    kind_cluster = config.kind.name if config.kind is not None else None
    built: list[pulumi.Resource] = [
        images.ProjectImage(
            f"image-{name}",
            images.IMAGES[name],
            ref,
            kind_cluster,
            pulumi.ResourceOptions(depends_on=provider_deps, parent=parent),
        )
        for name, ref in refs.items()
    ]
    return refs, built


def build_use_cases(
    config: StackConfig, platform: Platform, provider: k8s.Provider, cluster_resources: list[pulumi.Resource]
) -> dict[str, UseCase]:
    """The use cases' resources: one ``UseCase`` per configured component, wired to the platform's outputs (and,
    with KubeRay, the search cluster they share)."""
    if not config.components:
        return {}
    refs, built = project_images(config, cluster_resources)
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
    kuberay = platform.services.get("kuberay")
    if isinstance(kuberay, KubeRay):
        # One search cluster for every component, on the pipeline image (their code, the search step's packages).
        SearchCluster(
            "ray-search",
            WORKLOADS_NAMESPACE,
            refs["pipeline"],
            config.profile,
            provider,
            [kuberay.release, *handles.namespace, *built],
        )
    use_cases = {}
    for ref in config.components:
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
                image_resources=built,
                version=ref.version,
                kafka_namespace=platform.services["kafka"].args.namespace,
                topic_replicas=config.profile.kafka_replication,
                schedule=config.training_schedule,
                pipeline_namespace=platform.services["kubeflow-pipelines"].args.namespace,
            ),
        )
    return use_cases
