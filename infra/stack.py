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
about *where* and *how big* stays with the stack. Each target combines the release with its own
settings into the component's typed args (:class:`~infra.aws.config.SageMakerEndpointArgs`,
:class:`~infra.gcp.config.VertexEndpointArgs`, :class:`~infra.k8s.config.ModelDeploymentArgs`),
so every component rule applies. Errors name the stack file and the key path and say what is
allowed: ``stacks/Pulumi.prod.yaml: ml-endpoints:release.image.digest: required ...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.aws.config import (
    AutoscalingArgs,
    DataCaptureArgs,
    DeploymentArgs,
    EcrRepositoryArgs,
    KmsKeyArn,
    RollbackAlarmsArgs,
    SageMakerEndpointArgs,
    SamplePayload,
    VpcArgs,
)
from infra.clusters.eks import EksClusterArgs
from infra.clusters.existing import ExistingClusterArgs
from infra.clusters.gke import GkeClusterArgs
from infra.clusters.render import RenderArgs
from infra.gcp.config import (
    AcceleratorArgs,
    ArtifactRegistryArgs,
    RequestLoggingArgs,
    VertexEndpointArgs,
)
from infra.k8s.config import (
    DNS_LABEL,
    Autoscaling,
    GatewayRef,
    Gpu,
    IngressPeer,
    ModelDeploymentArgs,
    Probes,
    Resources,
    ServiceMonitorConfig,
    Shutdown,
)
from infra.secret_scan import (
    ENCRYPTED_PLACEHOLDER,
    find_plaintext_secrets,
    is_encrypted,
    secret_advice,
)
from infra.validation import ConfigError, key_path, validate
from serving import contract

NAMESPACE = "ml-endpoints"
STACKS_DIR = Path("stacks")
SECRET_PLACEHOLDER = ENCRYPTED_PLACEHOLDER
"""What an encrypted value reads as offline (plan, validate): the real value never leaves Pulumi."""

_DIGEST = r"^sha256:[0-9a-f]{64}$"
_TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
_REPOSITORY = r"^[a-z0-9][a-z0-9.-]*(:\d+)?(/[a-z0-9][a-z0-9._-]*)+$"
_ECR_REPOSITORY = r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/(?P<name>[a-z0-9._/-]+)$"
_S3_OBJECT = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$"
_GCS_URI = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/\S*)?$"


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    """``stacks/Pulumi.<stack>.yaml``."""
    return stacks_dir / f"Pulumi.{stack}.yaml"


class StackError(ConfigError):
    """Invalid stack configuration; ``key`` is ``<stack file>: ml-endpoints:<key path>``."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------------------ release


class ImageRef(_Frozen):
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
        """Short form for humans: ``sha256:ab12cd34ef56..`` or ``tag 1.4.0``."""
        return f"{self.digest[:19]}.." if self.digest else f"tag {self.tag}"


class ReleaseVariant(_Frozen):
    """One model behind the endpoints (``champion``, ``challenger``) and its share of traffic."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)]
    model_version: Annotated[str, Field(pattern=contract.MODEL_VERSION_PATTERN)]
    weight: Annotated[int, Field(ge=0, le=100)]
    """Percent of requests, on every target; the variants' weights add up to 100."""
    s3_uri: Annotated[str, Field(pattern=_S3_OBJECT)] | None = None
    """``s3://BUCKET/KEY.tar.gz`` of the artifacts (SageMaker; Kubernetes with artifacts on S3)."""
    gcs_uri: Annotated[str, Field(pattern=_GCS_URI)] | None = None
    """``gs://BUCKET/DIR`` of the artifacts (Vertex AI; Kubernetes with artifacts on GCS)."""


class Release(_Frozen):
    """What ``ml-endpoints promote`` copies from one stack to the next."""

    model_name: Annotated[str, Field(pattern=contract.MODEL_NAME_PATTERN)]
    image: ImageRef
    variants: Annotated[list[ReleaseVariant], Field(min_length=1, max_length=10)]

    @field_validator("variants")
    @classmethod
    def _split(cls, variants: list[ReleaseVariant]) -> list[ReleaseVariant]:
        names = [v.name for v in variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(repeated)}")
        total = sum(v.weight for v in variants)
        if total != 100:
            shares = ", ".join(f"{v.name}={v.weight}" for v in variants)
            raise ValueError(f"weights are percent and must add up to 100, not {total} ({shares})")
        return variants

    def weights(self) -> dict[str, int]:
        """Variant name -> percent."""
        return {v.name: v.weight for v in self.variants}


class PolicySettings(_Frozen):
    """How strict the policy pack is with this stack."""

    production: bool = False
    """Production rules: >= 2 instances/replicas per variant, images pinned by digest."""
    allow_public_exposure: list[str] = []
    """Resource names allowed to be reachable from the internet (explicit opt-in)."""


# ------------------------------------------------------------------------------------ targets


class _Target(_Frozen):
    enabled: bool = True


class SageMakerCompute(_Frozen):
    """Instances of one variant."""

    instance_type: str
    instance_count: Annotated[int, Field(ge=1)] = 1
    autoscaling: AutoscalingArgs | None = None
    volume_size_gb: Annotated[int, Field(ge=1, le=512)] | None = None
    container_startup_health_check_timeout_s: Annotated[int, Field(ge=60, le=3600)] | None = None


class SageMakerTarget(_Target):
    """``ml-endpoints:sagemaker``: a SageMaker endpoint serving the release's variants."""

    endpoint_name: str
    image_repository: Annotated[str, Field(pattern=_ECR_REPOSITORY)]
    """ECR repository URI without tag (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME``)."""
    repository: EcrRepositoryArgs | None = None
    """Declare that ECR repository in this stack (its ``name`` must match the URI)."""
    compute: SageMakerCompute
    variant_compute: dict[str, SageMakerCompute] = {}
    """Per variant name, replaces ``compute`` (a small challenger)."""
    environment: dict[str, str] = {}
    vpc: VpcArgs | None = None
    network_isolation: bool = False
    deployment: DeploymentArgs = DeploymentArgs()
    alarms: RollbackAlarmsArgs = RollbackAlarmsArgs()
    data_capture: DataCaptureArgs
    kms_key_arn: KmsKeyArn | None = None
    sample_payload: SamplePayload | None = None
    tags: dict[str, str] = {}


class VertexCompute(_Frozen):
    """Machines of one variant."""

    machine_type: str = "n1-standard-4"
    accelerator: AcceleratorArgs | None = None
    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    cpu_utilization_target: Annotated[int, Field(ge=1, le=100)] | None = None
    accelerator_duty_cycle_target: Annotated[int, Field(ge=1, le=100)] | None = None


class VertexTarget(_Target):
    """``ml-endpoints:vertex``: a Vertex AI endpoint serving the release's variants."""

    project: str
    region: str
    display_name: str
    endpoint_id: str | None = None
    image_repository: Annotated[str, Field(pattern=_REPOSITORY)]
    """Artifact Registry image path without tag (``REGION-docker.pkg.dev/PROJECT/REPO/IMAGE``)."""
    repository: ArtifactRegistryArgs | None = None
    """Declare that Artifact Registry repository in this stack."""
    compute: VertexCompute = VertexCompute()
    variant_compute: dict[str, VertexCompute] = {}
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    network: str | None = None
    request_logging: RequestLoggingArgs | None = None
    service_account_id: str | None = None
    sample: dict[str, Any] | None = None
    """What ``ml-endpoints verify`` predicts on (``instances`` or ``file``)."""


class KubernetesTarget(_Target):
    """``ml-endpoints:kubernetes``: a ModelDeployment on the ``ml-endpoints:cluster``."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "default"
    image_repository: Annotated[str, Field(pattern=_REPOSITORY)]
    artifact_store: Literal["s3", "gcs"] = "gcs"
    """Which of the release's artifact URIs the pods load (``MODEL_URI``)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    env: dict[str, str] = {}
    resources: Resources = Resources()
    gpu: Gpu | None = None
    autoscaling: Autoscaling | None = Autoscaling()
    variant_autoscaling: dict[str, Autoscaling] = {}
    replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    probes: Probes = Probes()
    shutdown: Shutdown = Shutdown()
    pdb_max_unavailable: Annotated[int, Field(ge=1)] = 1
    zone_spread: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    ingress_from: list[IngressPeer] = []
    gateway: GatewayRef | None = None
    service_monitor: ServiceMonitorConfig | None = None
    service_account_name: Annotated[str, Field(pattern=DNS_LABEL)] = "model-server"


ClusterConfig = Annotated[
    EksClusterArgs | GkeClusterArgs | ExistingClusterArgs | RenderArgs,
    Field(discriminator="type"),
]
_CLUSTER_TYPES = ("eks", "gke", "existing", "render")


# -------------------------------------------------------------------------------------- stack


class Components(BaseModel):
    """What the program declares; a ``None`` target is absent or disabled."""

    model_config = ConfigDict(frozen=True)

    ecr: EcrRepositoryArgs | None = None
    sagemaker: SageMakerEndpointArgs | None = None
    artifact_registry: ArtifactRegistryArgs | None = None
    vertex: VertexEndpointArgs | None = None
    cluster: EksClusterArgs | GkeClusterArgs | ExistingClusterArgs | RenderArgs | None = None
    kubernetes: ModelDeploymentArgs | None = None

    def stack_config(self) -> dict[str, Any]:
        """The components' args under the keys each component (and ``verify``) reads."""
        return {
            f"{NAMESPACE}:{key}": value.model_dump(mode="json", exclude_none=True)
            for key in sorted(type(self).model_fields)
            if (value := getattr(self, key)) is not None
        }


class StackConfig(_Frozen):
    """Every ``ml-endpoints:*`` key of one stack, checked together.

    Build it with :func:`load_stack`; the component args are composed (and validated) on
    construction and available through :attr:`components`.
    """

    release: Release
    previous_release: Release | None = None
    policy: PolicySettings = PolicySettings()
    sagemaker: SageMakerTarget | None = None
    vertex: VertexTarget | None = None
    kubernetes: KubernetesTarget | None = None
    cluster: ClusterConfig | None = None
    _components: Components | None = PrivateAttr(default=None)

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
                raise _rule(
                    (target, per_variant, unknown[0]),
                    f"not a variant of ml-endpoints:release (variants: {', '.join(names)})",
                )
        self._check_artifacts()
        self._check_production()
        self._check_cluster()
        self._components = _compose(self)
        return self

    def _check_artifacts(self) -> None:
        needs = []
        if _enabled(self.sagemaker):
            needs.append(("s3_uri", "ml-endpoints:sagemaker is enabled"))
        if _enabled(self.vertex):
            needs.append(("gcs_uri", "ml-endpoints:vertex is enabled"))
        if self.kubernetes is not None and self.kubernetes.enabled:
            store = self.kubernetes.artifact_store
            needs.append((f"{store}_uri", f"ml-endpoints:kubernetes loads artifacts from {store}"))
        for index, variant in enumerate(self.release.variants):
            for field, why in needs:
                if getattr(variant, field) is None:
                    raise _rule(("release", "variants", index, field), f"required: {why}")

    def _check_production(self) -> None:
        if self.policy.production and self.release.image.digest is None:
            raise _rule(
                ("release", "image", "digest"),
                "required in a production stack (ml-endpoints:policy.production): tags are "
                "mutable, pin the image by its sha256 digest",
            )

    def _check_cluster(self) -> None:
        k8s = self.kubernetes
        if k8s is None or not k8s.enabled:
            return
        cluster = self.cluster
        if cluster is None:
            raise _rule(
                ("cluster",),
                "required while ml-endpoints:kubernetes is enabled: type eks, gke, existing "
                "or render",
            )
        if isinstance(cluster, EksClusterArgs | GkeClusterArgs):
            for ours, theirs in (
                ("namespace", "serving_namespace"),
                ("service_account_name", "serving_service_account"),
            ):
                if getattr(k8s, ours) != getattr(cluster, theirs):
                    raise _rule(
                        ("cluster", theirs),
                        f"must equal ml-endpoints:kubernetes.{ours} ({getattr(k8s, ours)!r}): "
                        "the model server's cloud identity is bound to that service account",
                    )

    @property
    def components(self) -> Components:
        """The components' typed args, composed from the release and the targets."""
        assert self._components is not None  # composed on validation
        return self._components


def _enabled(target: _Target | None) -> bool:
    return target is not None and target.enabled


def _rule(loc: tuple[str | int, ...], message: str) -> ValueError:
    """A cross-key error located at ``loc`` (raised inside validation)."""
    return _LocatedError(loc, message)


class _LocatedError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _compose(stack: StackConfig) -> Components:
    release = stack.release
    parts: dict[str, Any] = {}
    if stack.sagemaker is not None and stack.sagemaker.enabled:
        parts["ecr"] = stack.sagemaker.repository
        parts["sagemaker"] = _component(
            stack, "sagemaker", SageMakerEndpointArgs, _sagemaker(release, stack.sagemaker)
        )
    if stack.vertex is not None and stack.vertex.enabled:
        parts["artifact_registry"] = stack.vertex.repository
        parts["vertex"] = _component(
            stack, "vertex", VertexEndpointArgs, _vertex(release, stack.vertex)
        )
    if stack.kubernetes is not None and stack.kubernetes.enabled:
        parts["cluster"] = stack.cluster
        parts["kubernetes"] = _component(
            stack, "kubernetes", ModelDeploymentArgs, _kubernetes(release, stack.kubernetes)
        )
    return Components(**parts)


def _component(stack: StackConfig, target: str, model: type[Any], data: dict[str, Any]) -> Any:
    try:
        return validate(model, data, target)
    except ConfigError as exc:
        raise _rule(
            _file_location(stack, target, exc.key),
            f"{exc.args[0].partition(': ')[2]} (in the {model.__name__} built from "
            f"ml-endpoints:release and ml-endpoints:{target})",
        ) from None


_VARIANT_KEY = re.compile(r"^\w+\.variants\[(?P<index>\d+)\]\.(?P<field>\w+)")


def _file_location(stack: StackConfig, target: str, key: str) -> tuple[str | int, ...]:
    """Where a composed component's invalid key comes from in the stack file: a variant's
    compute settings (``compute`` or ``variant_compute.NAME``), the release, or the target."""
    match = _VARIANT_KEY.match(key)
    if match is None:
        field = key.removeprefix(f"{target}.").partition(".")[0].partition("[")[0]
        return (target, field) if field in type(getattr(stack, target)).model_fields else (target,)
    variant = stack.release.variants[int(match["index"])]
    field = match["field"]
    settings = getattr(stack, target)
    per_variant = getattr(settings, "variant_compute", {})
    compute_fields = {*SageMakerCompute.model_fields, *VertexCompute.model_fields}
    if field in compute_fields:
        where = ("variant_compute", variant.name) if variant.name in per_variant else ("compute",)
        return (target, *where, field)
    if field == "autoscaling":
        return (target, "variant_autoscaling", variant.name)
    return ("release", "variants", int(match["index"]))


def _sagemaker(release: Release, target: SageMakerTarget) -> dict[str, Any]:
    image = release.image.reference(target.image_repository)
    variants = []
    for variant in release.variants:
        compute = target.variant_compute.get(variant.name, target.compute)
        variants.append(
            {
                "name": variant.name,
                "weight": float(variant.weight),
                **compute.model_dump(exclude_none=True),
                "model": {
                    "image": image,
                    "model_data_url": variant.s3_uri,
                    "model_name": release.model_name,
                    "model_version": variant.model_version,
                    "environment": target.environment,
                    "vpc": target.vpc,
                    "network_isolation": target.network_isolation,
                },
            }
        )
    settings = target.model_dump(
        include={"endpoint_name", "deployment", "alarms", "data_capture", "kms_key_arn"}
        | {"sample_payload", "tags"},
        exclude_none=True,
    )
    return {**settings, "variants": variants}


def _vertex(release: Release, target: VertexTarget) -> dict[str, Any]:
    image = release.image.reference(target.image_repository)
    variants = [
        {
            "name": variant.name,
            "image": image,
            "artifact_uri": variant.gcs_uri,
            "model_version": variant.model_version,
            "env": target.env,
            **target.variant_compute.get(variant.name, target.compute).model_dump(
                exclude_none=True
            ),
        }
        for variant in release.variants
    ]
    settings = target.model_dump(
        include={"project", "region", "display_name", "endpoint_id", "labels", "network"}
        | {"request_logging", "service_account_id", "sample"},
        exclude_none=True,
    )
    return {
        **settings,
        "model_name": release.model_name,
        "variants": variants,
        "traffic": release.weights(),
    }


def _kubernetes(release: Release, target: KubernetesTarget) -> dict[str, Any]:
    settings = target.model_dump(
        exclude={"enabled", "image_repository", "artifact_store", "variant_autoscaling"}
    )
    variants = []
    for variant in release.variants:
        entry: dict[str, Any] = {
            "name": variant.name,
            "model_uri": getattr(variant, f"{target.artifact_store}_uri"),
            "model_name": release.model_name,
            "model_version": variant.model_version,
            "weight": variant.weight,
        }
        if variant.name in target.variant_autoscaling:
            entry["autoscaling"] = target.variant_autoscaling[variant.name]
        variants.append(entry)
    return {
        **settings,
        "image": f"{target.image_repository}:{release.image.tag}",
        "image_digest": release.image.digest,
        "variants": variants,
    }


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
    data = project_keys(config)
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        raise _stack_error(exc, source) from None
    except _LocatedError as exc:  # pragma: no cover - pydantic wraps ValueErrors
        raise StackError(f"{source}: {_key(exc.loc)}", str(exc)) from None


def _stack_error(exc: ValidationError, source: str) -> StackError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    context = first.get("ctx") or {}
    located = context.get("error")
    if isinstance(located, _LocatedError):
        return StackError(f"{source}: {_key(located.loc)}", str(located))
    loc = tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and len(loc) == 1:
        message = f"not a known key; keys: {', '.join(_known_keys())}"
    more = len(errors) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    value = first.get("input")
    shown = value if isinstance(value, str | int | float | bool) else None
    return StackError(f"{source}: {_key(loc)}", message + suffix, shown)


def _key(loc: tuple[int | str, ...]) -> str:
    """``("cluster", "eks", "subnet_ids", 0)`` -> ``ml-endpoints:cluster.subnet_ids[0]``."""
    if len(loc) > 1 and loc[0] == "cluster" and loc[1] in _CLUSTER_TYPES:
        loc = (loc[0], *loc[2:])  # the union's tag is not a key in the file
    return key_path(f"{NAMESPACE}:{loc[0]}", loc[1:]) if loc else NAMESPACE


def _known_keys() -> list[str]:
    return [f"{NAMESPACE}:{name}" for name in StackConfig.model_fields]


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config`` mapping of a stack file, encrypted values read as
    :data:`SECRET_PLACEHOLDER` (offline tools never decrypt)."""
    import yaml  # no stubs installed

    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise StackError(str(path), f"cannot read the stack file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise StackError(str(path), f"not valid YAML: {exc}") from None
    config = (document or {}).get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackError(f"{path}: config", "must be a mapping of configuration keys")
    return {key: _placeholders(value) for key, value in config.items()}


def _placeholders(value: Any) -> Any:
    if is_encrypted(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_placeholders(v) for v in value]
    return value


def load_stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> StackConfig:
    """Read and validate ``stacks_dir/Pulumi.<stack>.yaml``."""
    path = stack_file(stack, stacks_dir)
    return load_stack(read_stack_file(path), str(path))
