"""The typed configuration of one stack (``stacks/Pulumi.<stack>.yaml``): a release and targets.

Keys, all under the ``ml-endpoints`` namespace::

    ml-endpoints:release            what runs: model, image (tag and digest), variants and weights
    ml-endpoints:previous_release   kept by ``ml-endpoints promote`` for ``rollback``
    ml-endpoints:policy             production: bool; allow_public_exposure: [resource names]
    ml-endpoints:sagemaker          SageMaker target (enabled, compute, capture, ...)
    ml-endpoints:vertex             Vertex AI target
    ml-endpoints:kubernetes         Kubernetes target
    ml-endpoints:cluster            where the Kubernetes target runs (eks, gke, existing, render)

The release is what moves between stacks (``ml-endpoints promote dev staging``); everything
about *where* and *how big* stays with the stack. The targets are made of the components' own
typed pieces (:class:`~infra.aws.config.InstanceCompute`, :class:`~infra.gcp.config.MachineArgs`,
:class:`~infra.k8s.config.ServingSettings`...), and the rules that join a target to the release
are checked here, so every error is reported where it is in the file and names the file, the key
and what is allowed: ``stacks/Pulumi.prod.yaml: ml-endpoints:release.image.digest: required ...``.
Building the components' args from a valid stack (:mod:`infra.stack.components`) cannot fail.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.aws.config import (
    ECR_REPOSITORY_URI,
    DataCaptureArgs,
    DeploymentArgs,
    EcrRepositoryArgs,
    InstanceCompute,
    KmsKeyArn,
    RollbackAlarmsArgs,
    S3ObjectUri,
    SageMakerName,
    SamplePayload,
    VpcArgs,
    local_storage,
    volume_key_message,
)
from infra.aws.config import Environment as SageMakerEnvironment
from infra.clusters.eks import EksClusterArgs
from infra.clusters.existing import ExistingClusterArgs
from infra.clusters.gke import GkeClusterArgs
from infra.clusters.render import RenderArgs
from infra.gcp.config import (
    DEFAULT_OPERATION_TIMEOUT_SECONDS,
    ArtifactRegistryArgs,
    DisplayName,
    EndpointId,
    GcsUri,
    IamMember,
    Labels,
    MachineArgs,
    Network,
    OperationTimeout,
    ProjectId,
    RequestLoggingArgs,
    ResourceName,
    SampleArgs,
    ServiceAccountId,
    VertexAlertsArgs,
    VertexEnv,
    VertexRegion,
    in_artifact_registry,
    operation_timeout_problem,
    private_endpoint_problem,
)
from infra.gcp.service_account import GKE_IDENTITY_ANNOTATION, bucket_of
from infra.k8s.config import DNS_LABEL, Autoscaling, ServingSettings
from infra.registries import GCR_HOSTS, ArtifactRegistryImage, EcrImage, registry_of
from infra.secret_scan import find_plaintext_secrets, secret_advice
from infra.secret_values import SECRET_NOT_ALLOWED, Secret, has_secret
from infra.stack.files import STACKS_DIR, StackError, read_stack_file, stack_file
from infra.validation import Frozen, Weight, key_path, rule_error, weighted_split
from serving import contract

NAMESPACE = "ml-endpoints"

_DIGEST = r"^sha256:[0-9a-f]{64}$"
_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_REPOSITORY = r"^[a-z0-9][a-z0-9.-]*(:\d+)?(/[a-z0-9][a-z0-9._-]*)+$"


# ------------------------------------------------------------------------------------ release


class ImageRef(Frozen):
    """The serving image: a version tag, and in production the digest that pins its bytes."""

    tag: Annotated[str, Field(pattern=_TAG)]
    digest: Annotated[str, Field(pattern=_DIGEST)] | None = None

    @field_validator("tag")
    @classmethod
    def _not_latest(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("'latest' moves under a running deployment; give a version tag")
        return value

    def reference(self, repository: str) -> str:
        """``REPOSITORY@sha256:...`` when pinned, else ``REPOSITORY:TAG``."""
        return f"{repository}@{self.digest}" if self.digest else f"{repository}:{self.tag}"

    @property
    def shown(self) -> str:
        """For humans, whole: the digest a reviewer must compare (``sha256:`` and 64 hex
        digits), or ``tag 1.4.0``."""
        return self.digest if self.digest else f"tag {self.tag}"


class ReleaseVariant(Frozen):
    """One model behind the endpoints (``champion``, ``challenger``) and its share of traffic."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)]
    model_version: Annotated[str, Field(pattern=contract.MODEL_VERSION_PATTERN)]
    weight: Weight
    """Percent of requests, on every target; the variants' weights add up to 100."""
    s3_uri: S3ObjectUri | None = None
    """``s3://BUCKET/KEY.tar.gz`` of the artifacts (SageMaker; Kubernetes with artifacts on S3)."""
    gcs_uri: GcsUri | None = None
    """``gs://BUCKET/DIR`` of the artifacts (Vertex AI; Kubernetes with artifacts on GCS)."""


class Release(Frozen):
    """What ``ml-endpoints promote`` copies from one stack to the next."""

    model_name: Annotated[str, Field(pattern=contract.MODEL_NAME_PATTERN)]
    image: ImageRef
    variants: Annotated[
        list[ReleaseVariant], Field(min_length=1, max_length=10), AfterValidator(weighted_split)
    ]

    def weights(self) -> dict[str, int]:
        """Variant name -> percent."""
        return {v.name: v.weight for v in self.variants}


class PolicySettings(Frozen):
    """How strict the policy pack is with this stack."""

    production: bool = False
    """Production rules: >= 2 instances/replicas per variant, images pinned by digest."""
    allow_public_exposure: list[str] = []
    """Resource names allowed to be reachable from the internet (explicit opt-in)."""


# ------------------------------------------------------------------------------------ targets


class _Target(Frozen):
    enabled: bool = True


class SageMakerTarget(_Target):
    """``ml-endpoints:sagemaker``: a SageMaker endpoint serving the release's variants."""

    endpoint_name: SageMakerName
    image_repository: Annotated[str, Field(pattern=ECR_REPOSITORY_URI.pattern)]
    """ECR repository URI without tag (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME``)."""
    repository: EcrRepositoryArgs | None = None
    """Declare that ECR repository in this stack."""
    compute: InstanceCompute
    variant_compute: dict[str, InstanceCompute] = {}
    """Per variant name, replaces ``compute`` (a small challenger)."""
    environment: SageMakerEnvironment = {}
    vpc: VpcArgs | None = None
    network_isolation: bool = False
    deployment: DeploymentArgs = DeploymentArgs()
    alarms: RollbackAlarmsArgs = RollbackAlarmsArgs()
    data_capture: DataCaptureArgs
    kms_key_arn: KmsKeyArn | None = None
    model_data_kms_key_arn: KmsKeyArn | None = None
    """KMS key of the model bucket if it uses SSE-KMS (the execution role decrypts via S3)."""
    sample_payload: SamplePayload | None = None
    tags: dict[str, str] = {}
    recreate_failed_endpoint: bool | None = None
    """Whether ``pulumi up`` deletes and recreates the endpoint when SageMaker left it
    ``Failed`` (it can only be deleted). Unset: yes, except with ``ml-endpoints:policy.
    production``, where it stops with the ``FailureReason`` and what to do; set it to true there
    after reading the reason, to let the next ``pulumi up`` recreate it."""

    @model_validator(mode="after")
    def _volume_key(self) -> Self:
        if self.kms_key_arn is not None:
            computes = [self.compute, *self.variant_compute.values()]
            nvme = [c.instance_type for c in computes if local_storage(c.instance_type)]
            if nvme:
                raise rule_error(("kms_key_arn",), volume_key_message(nvme), self.kms_key_arn)
        return self

    def compute_for(self, variant: str) -> tuple[str, InstanceCompute]:
        """The key that sizes ``variant`` (``variant_compute.NAME`` or ``compute``) and its
        compute."""
        if variant in self.variant_compute:
            return f"variant_compute.{variant}", self.variant_compute[variant]
        return "compute", self.compute


class VertexTarget(_Target):
    """``ml-endpoints:vertex``: a Vertex AI endpoint serving the release's variants."""

    project: ProjectId
    region: VertexRegion
    display_name: DisplayName
    endpoint_id: EndpointId | None = None
    image_repository: Annotated[
        str, Field(pattern=_REPOSITORY), AfterValidator(in_artifact_registry)
    ]
    """Artifact Registry image path without tag: ``REGION-docker.pkg.dev/PROJECT/REPO/IMAGE``,
    or ``eu.gcr.io/PROJECT/IMAGE`` (a ``gcr.io`` repository)."""
    repository: ArtifactRegistryArgs | None = None
    """Declare that Artifact Registry repository in this stack (``image_repository`` in it)."""
    compute: MachineArgs = MachineArgs()
    variant_compute: dict[str, MachineArgs] = {}
    env: VertexEnv = {}
    labels: Labels = {}
    network: Network | None = None
    request_logging: RequestLoggingArgs | None = None
    service_account_id: ServiceAccountId | None = None
    deployer: IamMember | None = None
    """Who runs ``pulumi up`` here (granted actAs on the models' service account); default: the
    identity of the credentials Pulumi uses."""
    sample: SampleArgs | None = None
    """What ``ml-endpoints verify`` predicts on (``instances`` or ``file``)."""
    operation_timeout_seconds: OperationTimeout = DEFAULT_OPERATION_TIMEOUT_SECONDS
    alerts: VertexAlertsArgs | None = None
    """Cloud Monitoring alert policies on the container's signal lines."""

    @model_validator(mode="after")
    def _timeout_fits_gpus(self) -> Self:
        computes = [self.compute, *self.variant_compute.values()]
        problem = operation_timeout_problem(
            self.operation_timeout_seconds, any(c.accelerator for c in computes)
        )
        if problem is not None:
            raise problem.error()
        return self

    @model_validator(mode="after")
    def _image_in_declared_repository(self) -> Self:
        """A stack deploys from the registry it declares: an image elsewhere would never be
        copied there (``ml-endpoints images``) and would deploy from a repository nobody
        checked."""
        declared = self.repository
        if declared is not None and not self.image_repository.startswith(declared.image_base + "/"):
            raise rule_error(
                ("image_repository",),
                f"must be an image in the repository this target declares "
                f"(ml-endpoints:vertex.repository): {declared.image_base}/IMAGE",
                self.image_repository,
            )
        return self


class KubernetesTarget(ServingSettings, _Target):
    """``ml-endpoints:kubernetes``: a ModelDeployment on the ``ml-endpoints:cluster``."""

    image_repository: Annotated[str, Field(pattern=_REPOSITORY)]
    artifact_store: Literal["s3", "gcs"] = "gcs"
    """Which of the release's artifact URIs the pods load (``MODEL_URI``)."""
    variant_autoscaling: dict[str, Autoscaling] = {}


ClusterConfig = Annotated[
    EksClusterArgs | GkeClusterArgs | ExistingClusterArgs | RenderArgs,
    Field(discriminator="type"),
]
_CLUSTER_TYPES = ("eks", "gke", "existing", "render")
_VERTEX_NAME: TypeAdapter[str] = TypeAdapter(ResourceName)


# -------------------------------------------------------------------------------------- stack


class StackConfig(Frozen):
    """Every ``ml-endpoints:*`` key of one stack, checked together. Build it with
    :func:`load_stack`; :func:`infra.stack.components.compose` gives the components' args."""

    release: Release
    previous_release: Release | None = None
    policy: PolicySettings = PolicySettings()
    sagemaker: SageMakerTarget | None = None
    vertex: VertexTarget | None = None
    kubernetes: KubernetesTarget | None = None
    cluster: ClusterConfig | None = None

    @model_validator(mode="after")
    def _targets_fit_release(self) -> Self:
        names = [v.name for v in self.release.variants]
        for target, per_variant in (
            ("sagemaker", "variant_compute"),
            ("vertex", "variant_compute"),
            ("kubernetes", "variant_autoscaling"),
        ):
            settings = getattr(self, target)
            unknown = sorted(set(getattr(settings, per_variant, {})) - set(names))
            if unknown:
                raise rule_error(
                    (target, per_variant, unknown[0]),
                    f"not a variant of ml-endpoints:release (variants: {', '.join(names)})",
                    None,
                )
        self._check_artifacts()
        self._check_production()
        self._check_sagemaker()
        self._check_vertex()
        self._check_kubernetes()
        return self

    def _check_artifacts(self) -> None:
        needs = []
        if enabled(self.sagemaker):
            needs.append(("s3_uri", "ml-endpoints:sagemaker is enabled"))
        if enabled(self.vertex):
            needs.append(("gcs_uri", "ml-endpoints:vertex is enabled"))
        if self.kubernetes is not None and self.kubernetes.enabled:
            store = self.kubernetes.artifact_store
            needs.append((f"{store}_uri", f"ml-endpoints:kubernetes loads artifacts from {store}"))
        for index, variant in enumerate(self.release.variants):
            for field, why in needs:
                if getattr(variant, field) is None:
                    raise rule_error(
                        ("release", "variants", index, field), f"required: {why}", None
                    )

    def _check_production(self) -> None:
        if self.policy.production and self.release.image.digest is None:
            raise rule_error(
                ("release", "image", "digest"),
                "required in a production stack (ml-endpoints:policy.production): tags are "
                "mutable, pin the image by its sha256 digest",
                None,
            )

    def _check_sagemaker(self) -> None:
        """The rollout fits the fleet the release's variants get."""
        target = self.sagemaker
        if target is None or not target.enabled:
            return
        fleet = []
        for variant in self.release.variants:
            key, compute = target.compute_for(variant.name)
            fleet.append((f"ml-endpoints:sagemaker.{key}.instance_count", compute.instance_count))
        problem = target.deployment.fleet_problem(fleet)
        if problem is not None:
            raise problem.error(("sagemaker", "deployment"))
        if target.deployment.auto_rollback:
            alarms = target.alarms.rollback_problem(len(self.release.variants))
            if alarms is not None:
                raise alarms.error(("sagemaker", "alarms"))

    def _check_vertex(self) -> None:
        """Vertex AI names deployed models after the variants: they start with a letter; a
        private endpoint takes one."""
        if self.vertex is None or not self.vertex.enabled:
            return
        problem = private_endpoint_problem(
            self.vertex.network, [v.name for v in self.release.variants]
        )
        if problem is not None:
            raise problem.error(("vertex",))
        for index, variant in enumerate(self.release.variants):
            try:
                _VERTEX_NAME.validate_python(variant.name)
            except ValidationError as exc:
                message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise rule_error(
                    ("release", "variants", index, "name"),
                    f"{message} (ml-endpoints:vertex is enabled)",
                    variant.name,
                ) from None

    def _check_kubernetes(self) -> None:
        k8s = self.kubernetes
        if k8s is None or not k8s.enabled:
            return
        problem = k8s.variants_problem(
            [v.name for v in self.release.variants], k8s.variant_autoscaling
        )
        if problem is not None:
            raise problem.error(("kubernetes",))
        cluster = self.cluster
        if cluster is None:
            raise rule_error(
                ("cluster",),
                "required while ml-endpoints:kubernetes is enabled: type eks, gke, existing "
                "or render",
                None,
            )
        if isinstance(cluster, RenderArgs):
            secret = next((k for k, v in k8s.env.items() if has_secret(v)), None)
            if secret is not None:
                raise rule_error(
                    ("kubernetes", "env", secret),
                    "cannot be a secret with ml-endpoints:cluster.type render: pulumi-kubernetes "
                    "writes Secrets to the rendered YAML in plain text; use a cluster type that "
                    "applies (eks, gke, existing) or have the pods read it at run time",
                    None,
                )
        if k8s.artifact_store == "gcs":
            unreadable = model_reader_problem(
                cluster, k8s, [v.gcs_uri for v in self.release.variants if v.gcs_uri]
            )
            if unreadable is not None:
                raise rule_error(("kubernetes", "artifact_store"), unreadable, "gcs")
        if isinstance(cluster, EksClusterArgs | GkeClusterArgs):
            unpullable = node_registry_problem(cluster, k8s.image_repository)
            if unpullable is not None:
                raise rule_error(
                    ("kubernetes", "image_repository"), unpullable, k8s.image_repository
                )
            for ours, theirs in (
                ("namespace", "serving_namespace"),
                ("service_account_name", "serving_service_account"),
            ):
                if getattr(k8s, ours) != getattr(cluster, theirs):
                    raise rule_error(
                        ("cluster", theirs),
                        f"must equal ml-endpoints:kubernetes.{ours} ({getattr(k8s, ours)!r}): "
                        "the model server's cloud identity is bound to that service account",
                        None,
                    )


def model_reader_problem(
    cluster: EksClusterArgs | GkeClusterArgs | ExistingClusterArgs | RenderArgs,
    k8s: KubernetesTarget,
    uris: list[str],
) -> str | None:
    """Why this stack cannot give the model pods read access to their ``gs://`` buckets, or
    None. It grants ``roles/storage.objectViewer`` on each bucket to the Google service account
    the pods act as: GKE's serving account, or the one an existing or rendered cluster's
    annotations name (``iam.gke.io/gcp-service-account``). EKS pods act as an IAM role."""
    if isinstance(cluster, GkeClusterArgs) or not uris:
        return None
    if isinstance(cluster, ExistingClusterArgs | RenderArgs) and (
        GKE_IDENTITY_ANNOTATION in cluster.service_account_annotations
    ):
        return None
    buckets = ", ".join(f"gs://{b}" for b in sorted({bucket_of(u) for u in uris}))
    identity = f"Kubernetes service account {k8s.namespace}/{k8s.service_account_name}"
    if isinstance(cluster, EksClusterArgs):
        why = "on EKS it acts as an IAM role (IRSA), which Cloud Storage does not know"
        fix = "use artifact_store: s3"
    else:
        why = (
            f"ml-endpoints:cluster.service_account_annotations names no Google service account "
            f"for it ({GKE_IDENTITY_ANNOTATION})"
        )
        fix = (
            f"annotate it with {GKE_IDENTITY_ANNOTATION}: EMAIL (workload identity) so this "
            "stack grants that account read access, or use artifact_store: s3"
        )
    return (
        f"the model pods' identity, {identity}, cannot be granted roles/storage.objectViewer "
        f"on {buckets}: {why}; {fix}"
    )


def node_registry_problem(cluster: EksClusterArgs | GkeClusterArgs, repository: str) -> str | None:
    """Why the nodes of a cluster this project creates cannot pull ``repository``, or None.

    The pods have no ``imagePullSecrets`` (:mod:`infra.k8s.pod`): the kubelet pulls with the
    node's own cloud identity, which reaches one cloud's registry only. GKE nodes authenticate
    to Artifact Registry (``LOCATION-docker.pkg.dev`` and the ``gcr.io`` repositories) with
    their Google service account (Artifact Registry documentation, "Deploy to Google Kubernetes
    Engine", integrate-gke; :data:`infra.clusters.gke.NODE_ROLES`); the EKS kubelet to ECR with
    the node role ("Permissions for the kubelet to use container images from Amazon ECR",
    Amazon EKS User Guide, "Amazon EKS node IAM role", create-node-role.html; here
    ``AmazonEC2ContainerRegistryReadOnly``). Any other registry (``ghcr.io``...) is left to
    the operator; existing and rendered clusters are not checked (their nodes are not ours).
    """
    found = registry_of(repository)
    if isinstance(cluster, GkeClusterArgs) and isinstance(found, EcrImage):
        return (
            f"{found.where} cannot be pulled by the GKE nodes of ml-endpoints:cluster (type "
            "gke): they authenticate to Artifact Registry with their Google service account and "
            "hold no ECR token; copy the image into Artifact Registry (ml-endpoints images "
            "--copy-from) and name it here as LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE "
            f"or HOST/PROJECT/IMAGE on a gcr.io host ({', '.join(GCR_HOSTS)})"
        )
    if isinstance(cluster, EksClusterArgs) and isinstance(found, ArtifactRegistryImage):
        return (
            f"{found.where} cannot be pulled by the EKS nodes of ml-endpoints:cluster (type "
            "eks): they authenticate to ECR with the node role and hold no Google credentials; "
            "copy the image into ECR (ml-endpoints images --copy-from) and name it here as "
            "ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME"
        )
    return None


def enabled(target: _Target | None) -> bool:
    """The target is configured and not switched off."""
    return target is not None and target.enabled


# ---------------------------------------------------------------------------------- loading


def project_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``ml-endpoints:*`` entries of a stack's ``config``, without the namespace."""
    prefix = f"{NAMESPACE}:"
    return {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}


def load_stack(config: Mapping[str, Any], source: str, *, scan_secrets: bool = True) -> StackConfig:
    """Validate a stack's ``config`` mapping (``source`` names the file in errors).

    Raises :class:`StackError` for a plain-text secret (unless ``scan_secrets`` is false: the
    caller checked, knowing which values Pulumi decrypted) or the first invalid key.
    """
    for found in find_plaintext_secrets(config) if scan_secrets else ():
        raise StackError(f"{source}: {found.key}", f"{found.reason}; {secret_advice(found.key)}")
    try:
        return StackConfig.model_validate(project_keys(config))
    except ValidationError as exc:
        raise _stack_error(exc, source) from None


def _stack_error(exc: ValidationError, source: str) -> StackError:
    """The first error, an unknown key before anything else: a misspelt key also leaves its
    intended key missing, and "instance_type: Field required" would hide the real mistake."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    first = unknown[0] if unknown else errors[0]
    loc = tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if isinstance(first.get("input"), Secret):
        message = SECRET_NOT_ALLOWED
    if first["type"] == "extra_forbidden":
        message = "not a known key" + _did_you_mean(loc)
        if len(loc) == 1:
            message += f"; keys: {', '.join(_known_keys())}"
        # The key it was meant to be is reported missing too: one mistake, one message.
        errors = [e for e in errors if not _caused_by(e, loc)]
    more = len(errors) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    value = first.get("input")
    shown = value if isinstance(value, str | int | float | bool) else None
    return StackError(f"{source}: {_key(loc)}", message + suffix, shown)


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """``; did you mean instance_type?`` when a known key at that place is close."""
    name = str(loc[-1])
    close = difflib.get_close_matches(name, sorted(_fields_at(loc)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _fields_at(loc: tuple[int | str, ...]) -> set[str]:
    """The keys the stack models accept where ``loc`` points (list indexes, dict keys and the
    cluster type's tag step over)."""
    models: list[type[BaseModel]] = [StackConfig]
    for part in loc[:-1]:
        inner = [
            found
            for model in models
            if isinstance(part, str) and part in model.model_fields
            for found in _models_in(model.model_fields[part].annotation)
        ]
        models = inner or models
    return {name for model in models for name in model.model_fields}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _caused_by(error: Any, unknown: tuple[int | str, ...]) -> bool:
    """A missing key next to the unknown one (its misspelling)."""
    loc = tuple(error["loc"])
    return error["type"] == "missing" and loc[:-1] == unknown[:-1]


def _key(loc: tuple[int | str, ...]) -> str:
    """``("cluster", "eks", "subnet_ids", 0)`` -> ``ml-endpoints:cluster.subnet_ids[0]``."""
    if len(loc) > 1 and loc[0] == "cluster" and loc[1] in _CLUSTER_TYPES:
        loc = (loc[0], *loc[2:])  # the union's tag is not a key in the file
    return key_path(f"{NAMESPACE}:{loc[0]}", loc[1:]) if loc else NAMESPACE


def _known_keys() -> list[str]:
    return [f"{NAMESPACE}:{name}" for name in StackConfig.model_fields]


def load_stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> StackConfig:
    """Read and validate ``stacks_dir/Pulumi.<stack>.yaml``."""
    path = stack_file(stack, stacks_dir)
    return load_stack(read_stack_file(path), str(path))
