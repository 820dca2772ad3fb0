"""The components' typed args, built from a validated stack: the release joined with each
enabled target.

Built from typed values, not from dicts: a target's pieces (compute, deployment, capture,
settings...) are the components' own models and go in as they are, and every rule that joins a
target to the release was checked by :class:`~infra.stack.config.StackConfig`, where it points
at the stack file's key. So this cannot fail for a valid stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.aws.config import EcrRepositoryArgs, ModelArgs, SageMakerEndpointArgs
from infra.aws.config import VariantArgs as SageMakerVariant
from infra.clusters.config import ClusterArgs
from infra.clusters.eks import EksClusterArgs
from infra.clusters.gke import GkeClusterArgs
from infra.gcp.config import ArtifactRegistryArgs, VertexEndpointArgs
from infra.gcp.config import VariantArgs as VertexVariant
from infra.k8s.config import GkeGatewayArgs, ModelDeploymentArgs, ServingSettings, Variant
from infra.stack.config import (
    KubernetesTarget,
    Release,
    SageMakerTarget,
    StackConfig,
    VertexTarget,
)


@dataclass(frozen=True)
class Components:
    """What the program declares; ``None``: that target is absent or switched off."""

    ecr: EcrRepositoryArgs | None = None
    sagemaker: SageMakerEndpointArgs | None = None
    artifact_registry: ArtifactRegistryArgs | None = None
    vertex: VertexEndpointArgs | None = None
    cluster: ClusterArgs | None = None
    kubernetes: ModelDeploymentArgs | None = None


def compose(stack: StackConfig) -> Components:
    """The args of every component the stack declares."""
    release = stack.release
    parts: dict[str, Any] = {}
    production = stack.policy.production
    if stack.sagemaker is not None and stack.sagemaker.enabled:
        if stack.sagemaker.repository is not None:
            referenced = [r.image.tag for r in (release, stack.previous_release) if r is not None]
            parts["ecr"] = stack.sagemaker.repository.model_copy(
                update={"protected_tags": tuple(sorted(set(referenced))), "protect": production}
            )
        parts["sagemaker"] = sagemaker_args(release, stack.sagemaker).model_copy(
            update={"protect": production}
        )
    if stack.vertex is not None and stack.vertex.enabled:
        parts["artifact_registry"] = stack.vertex.repository
        parts["vertex"] = vertex_args(release, stack.vertex)
    if stack.kubernetes is not None and stack.kubernetes.enabled:
        cluster = stack.cluster
        if isinstance(cluster, EksClusterArgs):
            cluster = cluster.model_copy(update={"protect": production})
        if isinstance(cluster, GkeClusterArgs) and cluster.deletion_protection is None:
            cluster = cluster.model_copy(update={"deletion_protection": production})
        parts["cluster"] = cluster
        kubernetes = kubernetes_args(release, stack.kubernetes)
        gateway = kubernetes.gateway
        if isinstance(cluster, GkeClusterArgs) and gateway is not None and gateway.gke is None:
            # The cluster's own Gateway controller is GKE's (gatewayApiConfig on the cluster).
            kubernetes = kubernetes.model_copy(
                update={"gateway": gateway.model_copy(update={"gke": GkeGatewayArgs()})}
            )
        parts["kubernetes"] = kubernetes
    return Components(**parts)


def sagemaker_args(release: Release, target: SageMakerTarget) -> SageMakerEndpointArgs:
    """One SageMaker variant per release variant, sized by its compute."""
    image = release.image.reference(target.image_repository)
    variants = []
    for variant in release.variants:
        _, compute = target.compute_for(variant.name)
        model = ModelArgs(
            image=image,
            model_data_url=variant.s3_uri,
            model_name=release.model_name,
            model_version=variant.model_version,
            environment=target.environment,
            vpc=target.vpc,
            network_isolation=target.network_isolation,
        )
        variants.append(
            SageMakerVariant(name=variant.name, weight=variant.weight, model=model, **dict(compute))
        )
    return SageMakerEndpointArgs(
        endpoint_name=target.endpoint_name,
        variants=tuple(variants),
        deployment=target.deployment,
        alarms=target.alarms,
        data_capture=target.data_capture,
        kms_key_arn=target.kms_key_arn,
        model_data_kms_key_arn=target.model_data_kms_key_arn,
        sample_payload=target.sample_payload,
        tags=target.tags,
        recreate_failed_endpoint=target.recreate_failed_endpoint,
    )


def vertex_args(release: Release, target: VertexTarget) -> VertexEndpointArgs:
    """One deployed model per release variant, the traffic split by the release's weights."""
    image = release.image.reference(target.image_repository)
    variants = [
        VertexVariant(
            name=variant.name,
            image=image,
            artifact_uri=variant.gcs_uri,
            model_version=variant.model_version,
            env=target.env,
            **dict(target.variant_compute.get(variant.name, target.compute)),
        )
        for variant in release.variants
    ]
    return VertexEndpointArgs(
        project=target.project,
        region=target.region,
        display_name=target.display_name,
        endpoint_id=target.endpoint_id,
        model_name=release.model_name,
        labels=target.labels,
        network=target.network,
        request_logging=target.request_logging,
        service_account_id=target.service_account_id,
        deployer=target.deployer,
        sample=target.sample,
        operation_timeout_seconds=target.operation_timeout_seconds,
        alerts=target.alerts,
        variants=variants,
        traffic=release.weights(),
    )


def kubernetes_args(release: Release, target: KubernetesTarget) -> ModelDeploymentArgs:
    """One Kubernetes variant per release variant, loading its artifacts from the target's
    store; the target's settings as they are."""
    settings = {name: getattr(target, name) for name in ServingSettings.model_fields}
    variants = [
        Variant(
            name=variant.name,
            model_uri=getattr(variant, f"{target.artifact_store}_uri"),
            model_name=release.model_name,
            model_version=variant.model_version,
            weight=variant.weight,
            autoscaling=target.variant_autoscaling.get(variant.name),
        )
        for variant in release.variants
    ]
    return ModelDeploymentArgs(
        **settings,
        image=f"{target.image_repository}:{release.image.tag}",
        image_digest=release.image.digest,
        variants=variants,
    )
