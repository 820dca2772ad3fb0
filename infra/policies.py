"""The policy pack's checks as plain functions over a stack's resources.

Each check takes the stack's resources (type token, name, URN and properties in Pulumi's wire
form, camelCase, as CrossGuard and the offline plan both see them) and a :class:`StackContext`,
and returns its violations. ``infra/policy/__main__.py`` wraps them as CrossGuard stack
policies; ``ml-endpoints validate`` runs them on each stack's offline plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.aws.config import local_storage

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
MODEL_COMPONENT_LABEL = ("app.kubernetes.io/component", "model-server")
MIN_PRODUCTION_REPLICAS = 2
#: Actions AWS authorizes only on ``Resource: "*"`` (no resource-level permissions).
ACTIONS_WITHOUT_RESOURCES = frozenset(
    {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    }
)
_BROAD_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
_BROAD_GCP_ROLES = frozenset({"roles/owner", "roles/editor"})
_PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
_WORKLOADS = frozenset(
    {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:apps/v1:DaemonSet",
    }
)


@dataclass(frozen=True)
class Resource:
    """One resource of the stack."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class StackContext:
    """What the checks need to know about the stack itself (``ml-endpoints:policy``)."""

    stack: str
    production: bool = False
    allow_public_exposure: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Violation:
    """A broken rule: which policy, which resource, and what to change."""

    policy: str
    urn: str
    message: str


Check = Callable[[Sequence[Resource], StackContext], list[Violation]]


@dataclass(frozen=True)
class Policy:
    """A named check and what it enforces."""

    name: str
    description: str
    check: Check


# ----------------------------------------------------------------------------------- helpers


#: The endpoint, its models and configuration (infra/aws/endpoint_provider.py).
SAGEMAKER_DEPLOYMENT = "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment"


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def _pod_spec(resource: Resource) -> Mapping[str, Any]:
    spec = _get(resource.props, "spec", "template", "spec")
    return spec if isinstance(spec, Mapping) else {}


def _is_model_workload(resource: Resource) -> bool:
    key, value = MODEL_COMPONENT_LABEL
    return bool(_get(resource.props, "metadata", "labels", key) == value)


def _is_gcp_iam_member(resource: Resource) -> bool:
    """``IAMMember`` (projects, buckets) or ``IamMember`` (Artifact Registry repositories): the
    provider spells it both ways."""
    return resource.type.startswith("gcp:") and resource.type.lower().endswith("iammember")


def _is_vertex_deployment(resource: Resource) -> bool:
    return resource.type.endswith(":VertexDeployment")


def _k8s_name(resource: Resource) -> tuple[str, str]:
    metadata = resource.props.get("metadata") or {}
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or resource.name)


def _document(policy: Any) -> Mapping[str, Any]:
    if isinstance(policy, str):
        try:
            parsed = json.loads(policy)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, Mapping) else {}
    return policy if isinstance(policy, Mapping) else {}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# ------------------------------------------------------------------------------------ checks


def check_limits_and_probes(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """Every container of a Deployment or StatefulSet has CPU and memory limits and readiness
    and liveness probes."""
    found = []
    for resource in _of_type(
        resources, "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"
    ):
        for container in _pod_spec(resource).get("containers") or []:
            name = container.get("name", "?")
            limits = _get(container, "resources", "limits") or {}
            missing = [k for k in ("cpu", "memory") if k not in limits]
            missing += [p for p in ("readinessProbe", "livenessProbe") if not container.get(p)]
            if missing:
                found.append(
                    Violation(
                        "container-limits-and-probes",
                        resource.urn,
                        f"container {name} of {resource.name} lacks {', '.join(missing)}",
                    )
                )
    return found


def check_hpa_and_pdb(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """Every model Deployment is scaled by an HPA and protected by a PodDisruptionBudget that
    selects its pods."""
    hpas = {
        (_k8s_name(r)[0], _get(r.props, "spec", "scaleTargetRef", "name"))
        for r in _of_type(resources, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
        if _get(r.props, "spec", "scaleTargetRef", "kind") == "Deployment"
    }
    pdbs = [
        (_k8s_name(r)[0], _get(r.props, "spec", "selector", "matchLabels") or {})
        for r in _of_type(resources, "kubernetes:policy/v1:PodDisruptionBudget")
    ]
    found = []
    for deployment in _of_type(resources, "kubernetes:apps/v1:Deployment"):
        if not _is_model_workload(deployment):
            continue
        namespace, name = _k8s_name(deployment)
        labels = _get(deployment.props, "spec", "template", "metadata", "labels") or {}
        if (namespace, name) not in hpas:
            found.append(Violation("model-hpa-and-pdb", deployment.urn, f"no HPA targets {name}"))
        covered = any(
            ns == namespace and selector and all(labels.get(k) == v for k, v in selector.items())
            for ns, selector in pdbs
        )
        if not covered:
            found.append(
                Violation("model-hpa-and-pdb", deployment.urn, f"no PDB selects the pods of {name}")
            )
    return found


def check_production_replicas(
    resources: Sequence[Resource], context: StackContext
) -> list[Violation]:
    """Production: every variant runs on at least two instances or replicas (SageMaker
    instances and autoscaling minimum, Vertex AI min replicas, model HPA minimum or fixed
    replicas)."""
    if not context.production:
        return []
    low = MIN_PRODUCTION_REPLICAS
    found = []

    def flag(resource: Resource, what: str, value: Any) -> None:
        found.append(
            Violation(
                "production-replicas",
                resource.urn,
                f"{what} is {value}; production needs at least {low}",
            )
        )

    for endpoint in _of_type(resources, SAGEMAKER_DEPLOYMENT):
        for variant in _get(endpoint.props, "config", "ProductionVariants") or []:
            count = variant.get("InitialInstanceCount")
            if count is None or count < low:
                flag(endpoint, f"variant {variant.get('VariantName')} InitialInstanceCount", count)
        for name, scaling in (endpoint.props.get("autoscaling") or {}).items():
            if (scaling.get("min_instances") or 0) < low:
                low_count = scaling.get("min_instances")
                flag(endpoint, f"variant {name} autoscaling min_instances", low_count)
    for deployment in filter(_is_vertex_deployment, resources):
        for variant in deployment.props.get("variants") or []:
            if (variant.get("min_replicas") or 0) < low:
                flag(
                    deployment,
                    f"Vertex variant {variant.get('name')} min_replicas",
                    variant.get("min_replicas"),
                )
    hpas = {
        (_k8s_name(r)[0], _get(r.props, "spec", "scaleTargetRef", "name")): r
        for r in _of_type(resources, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    }
    for deployment in _of_type(resources, "kubernetes:apps/v1:Deployment"):
        if not _is_model_workload(deployment):
            continue
        hpa = hpas.get(_k8s_name(deployment))
        if hpa is not None:
            if (_get(hpa.props, "spec", "minReplicas") or 1) < low:
                flag(
                    hpa, f"HPA {hpa.name} minReplicas", _get(hpa.props, "spec", "minReplicas") or 1
                )
        elif (_get(deployment.props, "spec", "replicas") or 1) < low:
            flag(
                deployment,
                f"{deployment.name} replicas",
                _get(deployment.props, "spec", "replicas") or 1,
            )
    return found


def check_production_digests(
    resources: Sequence[Resource], context: StackContext
) -> list[Violation]:
    """Production: model images are pinned by digest (``@sha256:``), on every platform."""
    if not context.production:
        return []
    images: list[tuple[Resource, str]] = []
    for endpoint in _of_type(resources, SAGEMAKER_DEPLOYMENT):
        images += [
            (endpoint, str(_get(model, "PrimaryContainer", "Image") or ""))
            for model in (endpoint.props.get("models") or {}).values()
        ]
    for deployment in filter(_is_vertex_deployment, resources):
        images += [
            (deployment, str(v.get("image", ""))) for v in deployment.props.get("variants") or []
        ]
    for workload in _of_type(resources, *_WORKLOADS):
        if _is_model_workload(workload):
            images += [
                (workload, str(c.get("image", "")))
                for c in _pod_spec(workload).get("containers") or []
            ]
    return [
        Violation(
            "production-image-digests",
            resource.urn,
            f"image {image or '(none)'} is not pinned by digest (REPOSITORY@sha256:...)",
        )
        for resource, image in images
        if "@sha256:" not in image
    ]


def check_ecr_repositories(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """ECR repositories scan images on push and have immutable tags."""
    found = []
    for repository in _of_type(resources, "aws:ecr/repository:Repository"):
        if _get(repository.props, "imageScanningConfiguration", "scanOnPush") is not True:
            found.append(
                Violation("ecr-scan-and-immutable", repository.urn, "scanOnPush is not on")
            )
        if repository.props.get("imageTagMutability") != "IMMUTABLE":
            found.append(
                Violation(
                    "ecr-scan-and-immutable", repository.urn, "imageTagMutability is not IMMUTABLE"
                )
            )
    return found


def check_artifact_registry_repositories(
    resources: Sequence[Resource], _: StackContext
) -> list[Violation]:
    """Artifact Registry Docker repositories have immutable tags and vulnerability scanning,
    as ECR repositories do; a ``gcr.io`` repository (named after its host) is one of them."""
    found = []
    for repository in _of_type(resources, "gcp:artifactregistry/repository:Repository"):
        if str(repository.props.get("format", "")).upper() != "DOCKER":
            continue
        where = f"repository {repository.props.get('repositoryId', repository.name)}"
        if _get(repository.props, "dockerConfig", "immutableTags") is not True:
            found.append(
                Violation(
                    "artifact-registry-scan-and-immutable",
                    repository.urn,
                    f"{where}: dockerConfig.immutableTags is not on",
                )
            )
        scanning = _get(repository.props, "vulnerabilityScanningConfig", "enablementConfig")
        if scanning == "DISABLED":
            found.append(
                Violation(
                    "artifact-registry-scan-and-immutable",
                    repository.urn,
                    f"{where}: vulnerability scanning is DISABLED",
                )
            )
    return found


def check_sagemaker_capture_and_kms(
    resources: Sequence[Resource], _: StackContext
) -> list[Violation]:
    """SageMaker endpoints capture data, encrypted with a KMS key, and encrypt their volumes
    with a KMS key (instance types with NVMe storage encrypt it in hardware and take none)."""
    found = []
    for endpoint in _of_type(resources, SAGEMAKER_DEPLOYMENT):
        config = endpoint.props.get("config") or {}
        capture = config.get("DataCaptureConfig") or {}
        problems = []
        if capture.get("EnableCapture") is not True:
            problems.append("data capture is off")
        elif not capture.get("KmsKeyId"):
            problems.append("captured data is not encrypted with a KMS key (KmsKeyId)")
        types = [v.get("InstanceType") or "" for v in config.get("ProductionVariants") or []]
        ebs = [t for t in types if t and not local_storage(t)]
        if ebs and not config.get("KmsKeyId"):
            problems.append("no KMS key for the instance volumes (KmsKeyId)")
        found += [Violation("sagemaker-capture-and-kms", endpoint.urn, p) for p in problems]
    return found


def check_vertex_traffic(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """A Vertex AI endpoint's traffic split names deployed variants and totals 100."""
    found = []
    for deployment in filter(_is_vertex_deployment, resources):
        split = deployment.props.get("traffic") or {}
        names = {v.get("name") for v in deployment.props.get("variants") or []}
        total = sum(float(v) for v in split.values())
        if abs(total - 100) > 1e-9:
            found.append(
                Violation(
                    "vertex-traffic-100", deployment.urn, f"traffic totals {total:g}, not 100"
                )
            )
        unknown = sorted(set(split) - names)
        if unknown:
            found.append(
                Violation(
                    "vertex-traffic-100",
                    deployment.urn,
                    f"traffic names unknown variants {unknown}",
                )
            )
    for endpoint in _of_type(resources, "gcp:vertex/aiEndpoint:AiEndpoint"):
        split = endpoint.props.get("trafficSplit")
        if split:
            values = json.loads(split) if isinstance(split, str) else split
            total = sum(float(v) for v in values.values())
            if abs(total - 100) > 1e-9:
                found.append(
                    Violation("vertex-traffic-100", endpoint.urn, f"trafficSplit totals {total:g}")
                )
    return found


def check_gpu_taints(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """GPU node pools carry the ``nvidia.com/gpu`` NoSchedule taint, and pods that request
    GPUs tolerate it."""
    found = []
    for group in _of_type(resources, "aws:eks/nodeGroup:NodeGroup"):
        if "NVIDIA" in str(group.props.get("amiType", "")) and not any(
            t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE"
            for t in group.props.get("taints") or []
        ):
            found.append(
                Violation(
                    "gpu-taints-and-tolerations",
                    group.urn,
                    f"GPU node group {group.name} is not tainted {GPU_TAINT_KEY}:NoSchedule",
                )
            )
    for pool in _of_type(resources, "gcp:container/nodePool:NodePool"):
        config = pool.props.get("nodeConfig") or {}
        if config.get("guestAccelerators") and not any(
            t.get("key") == GPU_TAINT_KEY and t.get("effect") == "NO_SCHEDULE"
            for t in config.get("taints") or []
        ):
            found.append(
                Violation(
                    "gpu-taints-and-tolerations",
                    pool.urn,
                    f"GPU node pool {pool.name} is not tainted {GPU_TAINT_KEY}:NoSchedule",
                )
            )
    for workload in _of_type(resources, *_WORKLOADS):
        spec = _pod_spec(workload)
        wants_gpu = any(
            GPU_RESOURCE in (_get(c, "resources", "limits") or {})
            or GPU_RESOURCE in (_get(c, "resources", "requests") or {})
            for c in spec.get("containers") or []
        )
        tolerates = any(
            t.get("key") == GPU_TAINT_KEY and t.get("effect") in (None, "NoSchedule")
            for t in spec.get("tolerations") or []
        )
        if wants_gpu and not tolerates:
            found.append(
                Violation(
                    "gpu-taints-and-tolerations",
                    workload.urn,
                    f"{workload.name} requests GPUs but does not tolerate {GPU_TAINT_KEY}",
                )
            )
    return found


def check_iam_wildcards(resources: Sequence[Resource], _: StackContext) -> list[Violation]:
    """No IAM statement allows a wildcard action, or every resource (``*``) for actions that
    support resource-level permissions; no administrator-style managed policies or roles."""
    found = []
    for policy in _of_type(
        resources,
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    ):
        for statement in _as_list(_document(policy.props.get("policy")).get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            sid = statement.get("Sid", "statement")
            wild = [a for a in actions if "*" in a]
            if wild or "NotAction" in statement:
                found.append(
                    Violation(
                        "iam-no-wildcards",
                        policy.urn,
                        f"{sid}: wildcard action {wild or 'NotAction'}",
                    )
                )
            resources_ = [str(r) for r in _as_list(statement.get("Resource"))]
            scoped = [a for a in actions if a not in ACTIONS_WITHOUT_RESOURCES]
            if "*" in resources_ and scoped:
                found.append(
                    Violation(
                        "iam-no-wildcards",
                        policy.urn,
                        f"{sid}: Resource '*' for {', '.join(scoped)}",
                    )
                )
    for attachment in _of_type(resources, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        arn = str(attachment.props.get("policyArn", ""))
        if arn.endswith(_BROAD_MANAGED_POLICIES) or arn.endswith("FullAccess"):
            found.append(
                Violation(
                    "iam-no-wildcards", attachment.urn, f"attaches the broad managed policy {arn}"
                )
            )
    for member in filter(_is_gcp_iam_member, resources):
        if member.props.get("role") in _BROAD_GCP_ROLES:
            found.append(
                Violation("iam-no-wildcards", member.urn, f"grants {member.props.get('role')}")
            )
    return found


def check_public_exposure(resources: Sequence[Resource], context: StackContext) -> list[Violation]:
    """Nothing is reachable from the internet unless listed in
    ``ml-endpoints:policy.allow_public_exposure``: LoadBalancer/NodePort Services, EKS API
    endpoints open to 0.0.0.0/0, IAM grants to allUsers, repository policies for everyone."""
    exposed: list[tuple[Resource, str]] = []
    for service in _of_type(resources, "kubernetes:core/v1:Service"):
        kind = _get(service.props, "spec", "type") or "ClusterIP"
        if kind in ("LoadBalancer", "NodePort"):
            exposed.append((service, f"Service type {kind}"))
    for cluster in _of_type(resources, "aws:eks/cluster:Cluster"):
        vpc = cluster.props.get("vpcConfig") or {}
        cidrs = vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
        if vpc.get("endpointPublicAccess", True) and "0.0.0.0/0" in cidrs:
            exposed.append((cluster, "EKS API endpoint open to 0.0.0.0/0"))
    for member in filter(_is_gcp_iam_member, resources):
        if str(member.props.get("member", "")) in _PUBLIC_MEMBERS:
            exposed.append(
                (member, f"grants {member.props.get('role')} to {member.props.get('member')}")
            )
    for policy in _of_type(resources, "aws:ecr/repositoryPolicy:RepositoryPolicy"):
        for statement in _as_list(_document(policy.props.get("policy")).get("Statement")):
            principal = statement.get("Principal")
            if principal == "*" or _get(principal, "AWS") == "*":
                exposed.append((policy, "repository policy allows everyone"))
    return [
        Violation(
            "no-public-exposure",
            resource.urn,
            f"{what}: public; list {resource.name!r} in ml-endpoints:policy.allow_public_exposure "
            "if that is intended",
        )
        for resource, what in exposed
        if resource.name not in context.allow_public_exposure
    ]


POLICIES: tuple[Policy, ...] = (
    Policy(
        "container-limits-and-probes",
        "Containers have resource limits and probes",
        check_limits_and_probes,
    ),
    Policy("model-hpa-and-pdb", "Every model Deployment has an HPA and a PDB", check_hpa_and_pdb),
    Policy(
        "production-replicas",
        "Production runs at least 2 replicas/instances per variant",
        check_production_replicas,
    ),
    Policy(
        "production-image-digests",
        "Production images are pinned by digest",
        check_production_digests,
    ),
    Policy(
        "ecr-scan-and-immutable",
        "ECR repositories scan on push and have immutable tags",
        check_ecr_repositories,
    ),
    Policy(
        "artifact-registry-scan-and-immutable",
        "Artifact Registry repositories (gcr.io ones too) scan images and have immutable tags",
        check_artifact_registry_repositories,
    ),
    Policy(
        "sagemaker-capture-and-kms",
        "SageMaker data capture is on and KMS keys are set",
        check_sagemaker_capture_and_kms,
    ),
    Policy("vertex-traffic-100", "Vertex AI traffic totals 100", check_vertex_traffic),
    Policy(
        "gpu-taints-and-tolerations",
        "GPU pools are tainted and GPU pods tolerate it",
        check_gpu_taints,
    ),
    Policy("iam-no-wildcards", "No IAM wildcards on actions or resources", check_iam_wildcards),
    Policy(
        "no-public-exposure",
        "No public network exposure without an explicit flag",
        check_public_exposure,
    ),
)


def run_checks(resources: Sequence[Resource], context: StackContext) -> list[Violation]:
    """Every policy's violations, in policy order."""
    return [v for policy in POLICIES for v in policy.check(resources, context)]
