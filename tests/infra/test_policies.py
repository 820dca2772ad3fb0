"""Each policy with an input that passes and one that fails (resources in wire form, as
CrossGuard and the offline plan see them)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.policies import (
    POLICIES,
    SAGEMAKER_DEPLOYMENT,
    Check,
    Resource,
    StackContext,
    check_artifact_registry_repositories,
    check_ecr_repositories,
    check_gpu_taints,
    check_hpa_and_pdb,
    check_iam_wildcards,
    check_limits_and_probes,
    check_production_digests,
    check_production_replicas,
    check_public_exposure,
    check_sagemaker_capture_and_kms,
    check_vertex_traffic,
)

DEV = StackContext("dev")
PROD = StackContext("prod", production=True)
DIGEST = "sha256:" + "ab" * 32
LABELS = {
    "app.kubernetes.io/name": "reranker",
    "app.kubernetes.io/component": "model-server",
    "ml-endpoints.io/variant": "champion",
}


def resource(type_: str, name: str, props: dict[str, Any]) -> Resource:
    return Resource(type=type_, name=name, urn=f"urn:pulumi:s::p::{type_}::{name}", props=props)


def deployment(**container: Any) -> Resource:
    spec = {
        "name": "model-server",
        "image": f"ghcr.io/acme/serving:1.0@{DIGEST}",
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
        "readinessProbe": {"httpGet": {"path": "/health/ready"}},
        "livenessProbe": {"httpGet": {"path": "/health/live"}},
        **container,
    }
    return resource(
        "kubernetes:apps/v1:Deployment",
        "md-champion",
        {
            "metadata": {"name": "reranker-champion", "namespace": "ml", "labels": LABELS},
            "spec": {
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {"containers": [spec]},
                }
            },
        },
    )


def ar_repository(
    repository_id: str, location: str, immutable: bool = True, scanning: str = "INHERITED"
) -> Resource:
    """An Artifact Registry Docker repository as the ArtifactRegistry component declares it; a
    gcr.io repository is one named after its host (``eu.gcr.io`` in ``europe``)."""
    return resource(
        "gcp:artifactregistry/repository:Repository",
        "serving",
        {
            "format": "DOCKER",
            "repositoryId": repository_id,
            "location": location,
            "dockerConfig": {"immutableTags": immutable},
            "vulnerabilityScanningConfig": {"enablementConfig": scanning},
        },
    )


def hpa(min_replicas: int = 2, target: str = "reranker-champion") -> Resource:
    return resource(
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "md-champion",
        {
            "metadata": {"name": target, "namespace": "ml"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": target},
                "minReplicas": min_replicas,
            },
        },
    )


def pdb(variant: str = "champion") -> Resource:
    return resource(
        "kubernetes:policy/v1:PodDisruptionBudget",
        "md-champion",
        {
            "metadata": {"name": "reranker-champion", "namespace": "ml"},
            "spec": {
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "reranker",
                        "ml-endpoints.io/variant": variant,
                    }
                }
            },
        },
    )


def endpoint_config(
    count: int = 2, capture: bool = True, kms: bool = True, kind: str = "ml.c5.xlarge"
) -> Resource:
    config: dict[str, Any] = {
        "ProductionVariants": [
            {"VariantName": "champion", "InitialInstanceCount": count, "InstanceType": kind}
        ],
        "DataCaptureConfig": {"EnableCapture": capture, "KmsKeyId": "arn:aws:kms:key/1"},
    }
    if kms:
        config["KmsKeyId"] = "arn:aws:kms:us-east-1:123456789012:key/1"
    return resource(SAGEMAKER_DEPLOYMENT, "cfg", {"config": config, "models": {}})


def vertex(
    traffic: dict[str, int], min_replicas: int = 2, image: str = f"r/i@{DIGEST}"
) -> Resource:
    return resource(
        "pulumi-python:dynamic/ml-endpoints/gcp:VertexDeployment",
        "vertex-deployment",
        {
            "variants": [
                {"name": name, "image": image, "min_replicas": min_replicas} for name in traffic
            ],
            "traffic": traffic,
        },
    )


def role_policy(*statements: dict[str, Any]) -> Resource:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return resource("aws:iam/rolePolicy:RolePolicy", "execution", {"policy": json.dumps(document)})


def gpu_pool(tainted: bool) -> Resource:
    taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    return resource(
        "aws:eks/nodeGroup:NodeGroup",
        "cluster-gpu",
        {"amiType": "AL2023_x86_64_NVIDIA", "taints": taints if tainted else None},
    )


def gpu_deployment(tolerates: bool) -> Resource:
    workload = deployment(
        resources={"limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}}
    )
    props = copy.deepcopy(dict(workload.props))
    if tolerates:
        props["spec"]["template"]["spec"]["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return resource(workload.type, workload.name, props)


def eks(cidrs: list[str]) -> Resource:
    return resource(
        "aws:eks/cluster:Cluster",
        "cluster",
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": cidrs}},
    )


def service(kind: str) -> Resource:
    return resource("kubernetes:core/v1:Service", "gateway", {"spec": {"type": kind}})


CASES: list[tuple[Check, StackContext, list[Resource], list[Resource], str]] = [
    (
        check_limits_and_probes,
        DEV,
        [deployment()],
        [deployment(livenessProbe=None, resources={"limits": {"cpu": "1"}})],
        "container model-server of md-champion lacks memory, livenessProbe",
    ),
    (
        check_hpa_and_pdb,
        DEV,
        [deployment(), hpa(), pdb()],
        [deployment(), hpa(target="other"), pdb(variant="challenger")],
        "no HPA targets reranker-champion",
    ),
    (
        check_production_replicas,
        PROD,
        [endpoint_config(2), vertex({"champion": 100}, 2), deployment(), hpa(2)],
        [endpoint_config(1), vertex({"champion": 100}, 1), deployment(), hpa(1)],
        "variant champion InitialInstanceCount is 1; production needs at least 2",
    ),
    (
        check_production_digests,
        PROD,
        [deployment(), vertex({"champion": 100})],
        [deployment(image="ghcr.io/acme/serving:1.0"), vertex({"champion": 100}, image="r/i:1")],
        "image ghcr.io/acme/serving:1.0 is not pinned by digest",
    ),
    (
        check_ecr_repositories,
        DEV,
        [
            resource(
                "aws:ecr/repository:Repository",
                "serving",
                {
                    "imageTagMutability": "IMMUTABLE",
                    "imageScanningConfiguration": {"scanOnPush": True},
                },
            )
        ],
        [resource("aws:ecr/repository:Repository", "serving", {"imageTagMutability": "MUTABLE"})],
        "scanOnPush is not on",
    ),
    (
        check_artifact_registry_repositories,
        DEV,
        [ar_repository("serving", "us-central1"), ar_repository("eu.gcr.io", "europe")],
        [
            ar_repository("serving", "us-central1"),
            ar_repository("eu.gcr.io", "europe", immutable=False, scanning="DISABLED"),
        ],
        "repository eu.gcr.io: dockerConfig.immutableTags is not on",
    ),
    (
        check_sagemaker_capture_and_kms,
        DEV,
        [endpoint_config()],
        [endpoint_config(capture=False, kms=False)],
        "data capture is off",
    ),
    (
        check_vertex_traffic,
        DEV,
        [vertex({"champion": 90, "challenger": 10})],
        [vertex({"champion": 90, "challenger": 20})],
        "traffic totals 110, not 100",
    ),
    (
        check_gpu_taints,
        DEV,
        [gpu_pool(tainted=True), gpu_deployment(tolerates=True)],
        [gpu_pool(tainted=False), gpu_deployment(tolerates=False)],
        "GPU node group cluster-gpu is not tainted nvidia.com/gpu:NoSchedule",
    ),
    (
        check_iam_wildcards,
        DEV,
        [
            role_policy(
                {
                    "Sid": "Read",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": ["arn:aws:s3:::b/k"],
                },
                {
                    "Sid": "Login",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
            )
        ],
        [role_policy({"Sid": "Everything", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})],
        "Everything: wildcard action ['s3:*']",
    ),
    (
        check_public_exposure,
        DEV,
        [eks(["203.0.113.0/24"]), service("ClusterIP")],
        [eks(["0.0.0.0/0"]), service("LoadBalancer")],
        "EKS API endpoint open to 0.0.0.0/0: public; list 'cluster' in "
        "ml-endpoints:policy.allow_public_exposure",
    ),
]


@pytest.mark.parametrize(
    ("check", "context", "passing", "failing", "message"),
    CASES,
    ids=[case[0].__name__ for case in CASES],
)
def test_policy_passes_and_fails(
    check: Check,
    context: StackContext,
    passing: list[Resource],
    failing: list[Resource],
    message: str,
) -> None:
    assert check(passing, context) == []
    violations = check(failing, context)
    assert violations, "the failing input must be reported"
    assert any(message in v.message for v in violations), [v.message for v in violations]
    assert all(v.urn for v in violations)


def test_every_policy_has_a_case() -> None:
    assert {p.check for p in POLICIES} == {case[0] for case in CASES}


def test_production_rules_only_apply_to_production() -> None:
    small = [endpoint_config(1), deployment(image="ghcr.io/acme/serving:1.0"), hpa(1)]
    assert check_production_replicas(small, DEV) == []
    assert check_production_digests(small, DEV) == []
    assert check_production_replicas(small, PROD)


def test_public_exposure_with_the_explicit_flag() -> None:
    allowed = StackContext("dev", allow_public_exposure=frozenset({"gateway"}))
    assert check_public_exposure([service("LoadBalancer")], allowed) == []


def test_wildcard_resource_for_scoped_actions() -> None:
    found = check_iam_wildcards(
        [
            role_policy(
                {"Sid": "Get", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}
            )
        ],
        DEV,
    )
    assert [v.message for v in found] == ["Get: Resource '*' for s3:GetObject"]


def test_gcr_repositories_and_images_are_held_to_the_same_rules() -> None:
    """A gcr.io repository is an Artifact Registry repository: its public readers, its tags and
    its scanning are checked as any repository's, and a gcr.io image must be pinned in
    production as any image."""
    gcr = ar_repository("gcr.io", "us", scanning="DISABLED")
    public = resource(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "serving-reader-allUsers",
        {"repository": "gcr.io", "role": "roles/artifactregistry.reader", "member": "allUsers"},
    )
    assert [v.message for v in check_artifact_registry_repositories([gcr], DEV)] == [
        "repository gcr.io: vulnerability scanning is DISABLED"
    ]
    [exposed] = check_public_exposure([public], DEV)
    assert exposed.message.startswith("grants roles/artifactregistry.reader to allUsers: public")
    unpinned = deployment(image="eu.gcr.io/acme-ml/serving:1.0")
    assert [v.message for v in check_production_digests([unpinned], PROD)] == [
        "image eu.gcr.io/acme-ml/serving:1.0 is not pinned by digest (REPOSITORY@sha256:...)"
    ]


def test_other_repository_formats_are_not_docker_repositories() -> None:
    maven = resource("gcp:artifactregistry/repository:Repository", "jars", {"format": "MAVEN"})
    assert check_artifact_registry_repositories([maven], DEV) == []
