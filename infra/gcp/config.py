"""Typed, validated arguments for the GCP components.

Every check runs before any resource is declared and names the full key path, e.g.
``vertex.variants[1].accelerator`` or ``artifact_registry.region``. The stack models
(:mod:`infra.stack.config`) reuse the pieces (:class:`MachineArgs`, the annotated field types),
so a stack file's error is reported at the stack key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.monitoring.config import AlertsConfig, Loading, Readiness, Saturation
from infra.registries import GCR_HOSTS, ArtifactRegistryImage, image_base, parse, registry_of
from infra.secret_values import Secret
from infra.validation import (
    Frozen,
    Problem,
    Weight,
    check_split,
    check_unique_names,
    validate,
)
from serving import contract

VERTEX_KEY = "vertex"
ARTIFACT_REGISTRY_KEY = "artifact_registry"

# Where Vertex AI online prediction runs.
# Source: https://cloud.google.com/vertex-ai/docs/general/locations (feature availability table).
VERTEX_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1",
        "asia-east2",
        "asia-northeast1",
        "asia-northeast2",
        "asia-northeast3",
        "asia-south1",
        "asia-southeast1",
        "asia-southeast2",
        "australia-southeast1",
        "australia-southeast2",
        "europe-central2",
        "europe-north1",
        "europe-southwest1",
        "europe-west1",
        "europe-west2",
        "europe-west3",
        "europe-west4",
        "europe-west6",
        "europe-west8",
        "europe-west9",
        "europe-west12",
        "me-central1",
        "me-central2",
        "me-west1",
        "northamerica-northeast1",
        "northamerica-northeast2",
        "southamerica-east1",
        "southamerica-west1",
        "us-central1",
        "us-east1",
        "us-east4",
        "us-east5",
        "us-south1",
        "us-west1",
        "us-west2",
        "us-west3",
        "us-west4",
    }
)
# Artifact Registry also offers multi-region locations.
# Source: https://cloud.google.com/artifact-registry/docs/repositories/repo-locations
ARTIFACT_REGISTRY_MULTI_REGIONS = frozenset({"us", "europe", "asia"})

_REGION_FORMAT = re.compile(r"^[a-z]+-[a-z]+\d+$")
_PROJECT_ID = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
_NAME = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_KMS_KEY = r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$"
# Image references must pin a tag or a digest: "latest" drifts under a deployed model.
_IMAGE = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9.-]*(:\d+)?(/[a-z0-9][a-z0-9._-]*)+)"
    r"(?P<ref>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
_GCS_URI = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\s]*)?$"
_SERVING_NAME = contract.MODEL_NAME_PATTERN
_SERVING_VERSION = contract.MODEL_VERSION_PATTERN
_BIGQUERY_TABLE = r"^bq://[a-z][a-z0-9-]{4,28}[a-z0-9](\.[A-Za-z0-9_]{1,1024}){1,2}$"
_NETWORK = r"^projects/\d+/global/networks/[a-z]([-a-z0-9]*[a-z0-9])?$"

# General-purpose machine types Vertex AI serves on (CPU only, except N1 which takes GPUs).
# Source: https://cloud.google.com/vertex-ai/docs/predictions/configure-compute#machine-types
_GENERAL_MACHINE = re.compile(
    r"^(?P<family>n1|e2|n2|n2d|c2|c2d|c3|n4)-(?P<shape>standard|highmem|highcpu)-(?P<cpus>\d{1,3})$"
)

# Accelerators Vertex AI prediction offers and the counts each can be attached in.
# Source: https://cloud.google.com/vertex-ai/docs/predictions/configure-compute#gpus
# N1 machines take these GPUs in these counts:
N1_ACCELERATOR_COUNTS: dict[str, tuple[int, ...]] = {
    "NVIDIA_TESLA_T4": (1, 2, 4),
    "NVIDIA_TESLA_P4": (1, 2, 4),
    "NVIDIA_TESLA_P100": (1, 2, 4),
    "NVIDIA_TESLA_V100": (1, 2, 4, 8),
}
# Accelerator-optimized machines come with a fixed GPU type and count.
ACCELERATOR_MACHINES: dict[str, tuple[str, int]] = {
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    **{f"g2-standard-{n}": ("NVIDIA_L4", 1) for n in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("NVIDIA_L4", 2),
    "g2-standard-48": ("NVIDIA_L4", 4),
    "g2-standard-96": ("NVIDIA_L4", 8),
    **{f"a3-highgpu-{n}g": ("NVIDIA_H100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("NVIDIA_H100_MEGA_80GB", 8),
    "a3-ultragpu-8g": ("NVIDIA_H200_141GB", 8),
    "a4-highgpu-8g": ("NVIDIA_B200", 8),
}
AcceleratorType = Literal[
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_L4",
    "NVIDIA_H100_80GB",
    "NVIDIA_H100_MEGA_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200",
]
# Set by the component from model_name, model_version and the variant name.
RESERVED_ENV = contract.MODEL_IDENTITY_ENV


def _shaped(regex: str, expected: str) -> AfterValidator:
    """A string check whose error says what is expected instead of quoting a regex."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"must be {expected}")
        return value

    return AfterValidator(check)


def _digits_as_text(value: Any) -> Any:
    """YAML reads ``endpoint_id: 4242`` as a number; the API names it as text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(
                f"label key {key!r} must be 1-63 lowercase letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if not _LABEL_VALUE.match(value):
            raise ValueError(
                f"label {key}={value!r}: values are 0-63 lowercase letters, digits, '_' or '-'"
            )
    return labels


def _check_region(region: str, allowed: frozenset[str], service: str, source: str) -> str:
    if not _REGION_FORMAT.match(region) and region not in allowed:
        raise ValueError("must be a GCP region name like 'us-central1'")
    if region not in allowed:
        raise ValueError(f"{service} is not offered there; regions: {source}")
    return region


def _vertex_region(region: str) -> str:
    return _check_region(
        region,
        VERTEX_REGIONS,
        "Vertex AI prediction",
        "https://cloud.google.com/vertex-ai/docs/general/locations",
    )


def _registry_region(region: str) -> str:
    return _check_region(
        region,
        VERTEX_REGIONS | ARTIFACT_REGISTRY_MULTI_REGIONS,
        "Artifact Registry",
        "https://cloud.google.com/artifact-registry/docs/repositories/repo-locations",
    )


def _repository_id(value: str) -> str:
    if value in GCR_HOSTS:
        raise ValueError(f"{value} is a Container Registry host: set gcr_host: {value} instead")
    if not re.match(_NAME, value):
        raise ValueError("must be 1-63 lowercase letters, digits or '-', starting with a letter")
    return value


def _gcr_host(value: str) -> str:
    if value not in GCR_HOSTS:
        raise ValueError(
            f"must be one of {', '.join(GCR_HOSTS)} (the Container Registry hosts Artifact "
            "Registry serves); for another name, set repository_id and region"
        )
    return value


def gcr_repository_problem(
    gcr_host: str | None, region: str | None, repository_id: str | None
) -> Problem | None:
    """A repository is either named (``repository_id`` and ``region``) or serves a gcr.io host
    (``gcr_host``, whose name and multi-region are fixed: :data:`GCR_HOSTS`, from the Artifact
    Registry documentation, "gcr.io repositories")."""
    if gcr_host is None:
        for key, value in (("repository_id", repository_id), ("region", region)):
            if value is None:
                return Problem((key,), "required (or gcr_host, for a gcr.io repository)")
        return None
    if repository_id is not None:
        return Problem(
            ("repository_id",),
            f"leave it out with gcr_host: the repository serving {gcr_host} is named {gcr_host}",
            repository_id,
        )
    location = GCR_HOSTS[gcr_host]
    if region is not None and region != location:
        pairs = ", ".join(f"{host} -> {where}" for host, where in GCR_HOSTS.items())
        return Problem(
            ("region",),
            f"{gcr_host} is served from the {location} multi-region: set region: {location} or "
            f"leave region out (gcr.io hosts and their locations: {pairs})",
            region,
        )
    return None


def in_artifact_registry(repository: str) -> str:
    """An image repository Vertex AI can pull from: Artifact Registry, as
    ``LOCATION-docker.pkg.dev/...`` or a ``gcr.io`` repository's ``HOST/PROJECT/...``.

    ``ModelContainerSpec.image_uri`` "must identify an image in Artifact Registry or Container
    Registry" (python-aiplatform ``google/cloud/aiplatform_v1/types/model.py``), and Container
    Registry is shut down: its URLs work only when a ``gcr.io`` repository serves them.
    """
    found = registry_of(repository)
    if not isinstance(found, ArtifactRegistryImage):
        raise ValueError(
            f"{found.where} is not Artifact Registry, and Vertex AI pulls model containers from "
            "Artifact Registry only: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE, or "
            f"HOST/PROJECT/IMAGE for a gcr.io repository ({', '.join(GCR_HOSTS)})"
        )
    return repository


def _env(value: dict[str, str | Secret]) -> dict[str, str | Secret]:
    for key in value:
        if key.startswith("AIP_"):
            raise ValueError(f"{key}: Vertex AI sets AIP_* variables itself")
        if key in RESERVED_ENV:
            raise ValueError(
                f"{key} is set by the component (model_name, model_version, variant name)"
            )
    return value


ProjectId = Annotated[
    str, _shaped(_PROJECT_ID, "a GCP project ID: 6-30 lowercase letters, digits or '-'")
]
ResourceName = Annotated[
    str, _shaped(_NAME, "1-63 lowercase letters, digits or '-', starting with a letter")
]
VertexRegion = Annotated[str, AfterValidator(_vertex_region)]
GcsUri = Annotated[str, _shaped(_GCS_URI, "a gs://BUCKET/PATH URI")]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
VertexEnv = Annotated[dict[str, str | Secret], AfterValidator(_env)]
"""Environment of the serving container: Vertex AI's ``AIP_*`` and the serving contract's own
variables are refused. Values set with ``--secret`` stay :class:`~infra.secret_values.Secret`."""
DisplayName = Annotated[str, Field(pattern=r"^.{1,128}$")]
ENDPOINT_ID = r"^([1-9][0-9]{0,8}|[a-z]([a-z0-9-]{0,61}[a-z0-9])?)$"
"""``CreateEndpointRequest.endpoint_id``: "If the first character is a letter, this value may be
up to 63 characters, and valid characters are [a-z0-9-]. The last character must be a letter or
number. If the first character is a number, this value may be up to 9 characters, and valid
characters are [0-9] with no leading zeros" (python-aiplatform
``google/cloud/aiplatform_v1/types/endpoint_service.py``; REST reference
https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/create).
terraform-provider-google's ``resource_vertex_ai_endpoint.go`` still documents 10 digits."""
EndpointId = Annotated[
    str,
    BeforeValidator(_digits_as_text),
    _shaped(
        ENDPOINT_ID,
        "up to 9 digits without a leading zero, or up to 63 lowercase letters, digits and '-' "
        "starting with a letter and ending with a letter or digit",
    ),
]
Network = Annotated[str, _shaped(_NETWORK, "projects/PROJECT_NUMBER/global/networks/NAME")]
IamMember = Annotated[
    str,
    _shaped(
        r"^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain):[^\s:]+"
        r"|(principal|principalSet)://\S+)$",
        "an IAM member: user:EMAIL, serviceAccount:EMAIL, group:EMAIL, domain:DOMAIN, "
        "principal://... or principalSet://...",
    ),
]
ServiceAccountId = Annotated[str, _shaped(_PROJECT_ID, "6-30 lowercase letters, digits or '-'")]


PRIVATE_ENDPOINTS_DOC = (
    "https://cloud.google.com/vertex-ai/docs/predictions/using-private-endpoints"
)
GPU_DEPLOY_SECONDS = 1800
"""A model on GPUs can take 15-30 minutes to deploy (python-aiplatform#3329 "Model deploy timeout
in 900 seconds"; GoogleCloudPlatform/vertex-ai-samples#2103): an operation wait shorter than
that gives up on a deployment that is still going fine."""
DEFAULT_OPERATION_TIMEOUT_SECONDS = 2 * GPU_DEPLOY_SECONDS
OperationTimeout = Annotated[int, Field(ge=60, le=14_400)]
"""How long the provider waits for one Vertex AI operation (upload, deploy, undeploy); the
operation goes on in the cloud after a client gives up, and the next run waits for it."""


def private_endpoint_problem(network: str | None, variants: list[str]) -> Problem | None:
    """A VPC-peered endpoint serves one deployed model: "Only support one model per private
    endpoint" (:data:`PRIVATE_ENDPOINTS_DOC`, Limitations). Deploying a second variant fails at
    the API after the first was deployed, so it is refused here, at ``network``."""
    if network is None or len(variants) <= 1:
        return None
    return Problem(
        ("network",),
        f"a private endpoint (VPC peering) serves one deployed model, and {len(variants)} "
        f"variants are configured ({', '.join(variants)}): deploy one variant per private "
        f"endpoint, or leave network out to split traffic ({PRIVATE_ENDPOINTS_DOC})",
        network,
    )


def operation_timeout_problem(seconds: int, accelerators: bool) -> Problem | None:
    """GPU deployments take up to :data:`GPU_DEPLOY_SECONDS`; a shorter wait fails them."""
    if not accelerators or seconds >= GPU_DEPLOY_SECONDS:
        return None
    return Problem(
        ("operation_timeout_seconds",),
        f"must be at least {GPU_DEPLOY_SECONDS} with GPU variants: deploying a model on GPUs "
        f"takes 15-30 minutes (default {DEFAULT_OPERATION_TIMEOUT_SECONDS})",
        seconds,
    )


class ArtifactRegistryArgs(Frozen):
    """A Docker repository for the serving image (``ml-endpoints:artifact_registry``).

    Either a repository of its own (``repository_id`` in ``region``), or the repository that
    serves a Container Registry host (``gcr_host: eu.gcr.io``): Artifact Registry names it after
    the host and places it in the host's multi-region (:data:`~infra.registries.GCR_HOSTS`), so
    ``region`` may be left out and ``repository_id`` must be. Both kinds take the same cleanup,
    tag, CMEK, scanning and label settings.
    """

    project: ProjectId
    region: Annotated[str, AfterValidator(_registry_region)] | None = Field(
        None, description="A region or the multi-regions us, europe, asia."
    )
    repository_id: Annotated[str, AfterValidator(_repository_id)] | None = None
    gcr_host: Annotated[str, AfterValidator(_gcr_host)] | None = Field(
        None, description="Serve this gcr.io host from Artifact Registry: gcr.io, us.gcr.io, ..."
    )
    description: str = "ml-endpoints serving images"
    immutable_tags: bool = True
    delete_untagged_after_days: Annotated[int, Field(ge=1, le=3650)] | None = 7
    keep_recent_versions: Annotated[int, Field(ge=1, le=1000)] | None = 10
    cleanup_dry_run: bool = False
    kms_key_name: (
        Annotated[str, _shaped(_KMS_KEY, "projects/P/locations/L/keyRings/R/cryptoKeys/K")] | None
    ) = None
    vulnerability_scanning: bool = True
    labels: Labels = Field(default_factory=dict)
    readers: tuple[IamMember, ...] = Field(
        (),
        description="Granted roles/artifactregistry.reader on this repository (e.g. the nodes "
        "of a cluster in another project; for a gcr.io repository, instead of the storage "
        "bucket grants Container Registry used).",
    )
    adopt: bool = Field(
        False,
        description="The repository exists already (made by hand, by the gcr.io migration or "
        "another stack): import it (Pulumi's import resource option) instead of creating it.",
    )

    @model_validator(mode="after")
    def _named_and_placed(self) -> Self:
        problem = gcr_repository_problem(self.gcr_host, self.region, self.repository_id)
        if problem is not None:
            raise problem.error()
        return self

    @property
    def repository_name(self) -> str:
        """``projects/P/locations/L/repositories/R``: the API's name of the repository, which
        is also its ID in pulumi-gcp (terraform-provider-google sets the ID of
        ``google_artifact_registry_repository`` to this form and imports by it)."""
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def import_id(self) -> str | None:
        """The ID the stack imports the repository by when it is adopted (:attr:`adopt`)."""
        return self.repository_name if self.adopt else None

    @property
    def location(self) -> str:
        """Where the repository is: ``region``, or the multi-region of ``gcr_host``."""
        if self.gcr_host is not None:
            return GCR_HOSTS[self.gcr_host]
        assert self.region is not None  # checked by validation
        return self.region

    @property
    def repository(self) -> str:
        """The repository's id: ``repository_id``, or ``gcr_host`` itself."""
        name = self.gcr_host or self.repository_id
        assert name is not None  # checked by validation
        return name

    @property
    def image_base(self) -> str:
        """Where its images are pulled from: ``eu.gcr.io/PROJECT`` or
        ``REGION-docker.pkg.dev/PROJECT/REPOSITORY``; ``/IMAGE:TAG`` follows."""
        return image_base(self.project, self.location, self.repository)


class AcceleratorArgs(Frozen):
    """A GPU attached to every replica."""

    type: AcceleratorType
    count: Annotated[int, Field(ge=1, le=16)] = 1


class MachineArgs(Frozen):
    """The machines one variant is deployed on (a stack's ``ml-endpoints:vertex.compute``)."""

    machine_type: str = "n1-standard-4"
    accelerator: AcceleratorArgs | None = Field(None, validate_default=True)
    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = Field(None, validate_default=True)
    cpu_utilization_target: Annotated[int, Field(ge=1, le=100)] | None = None
    accelerator_duty_cycle_target: Annotated[int, Field(ge=1, le=100)] | None = None

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, value: str) -> str:
        if value in ACCELERATOR_MACHINES or _GENERAL_MACHINE.match(value):
            return value
        raise ValueError(
            "must be a Vertex AI machine type such as 'n1-standard-4', 'e2-standard-8', "
            "'a2-highgpu-1g' or 'g2-standard-8'"
        )

    @field_validator("accelerator")
    @classmethod
    def _accelerator(cls, value: AcceleratorArgs | None, info: ValidationInfo) -> Any:
        machine = info.data.get("machine_type")
        if machine is None:  # already reported
            return value
        fixed = ACCELERATOR_MACHINES.get(machine)
        if fixed is not None:
            kind, count = fixed
            if value is None or (value.type, value.count) != fixed:
                raise ValueError(f"{machine} comes with {{type: {kind}, count: {count}}}; set that")
            return value
        if value is None:
            return value
        if not machine.startswith("n1-"):
            raise ValueError(
                f"{machine} takes no accelerator; GPUs attach to n1-* machines, or use an "
                "accelerator-optimized type (a2-*, a3-*, g2-*)"
            )
        counts = N1_ACCELERATOR_COUNTS.get(value.type)
        if counts is None:
            machines = sorted(m for m, (k, _) in ACCELERATOR_MACHINES.items() if k == value.type)
            raise ValueError(f"{value.type} only comes with machine types {', '.join(machines)}")
        if value.count not in counts:
            raise ValueError(
                f"{value.type} on n1 machines comes in counts {', '.join(map(str, counts))}, "
                f"not {value.count}"
            )
        return value

    @field_validator("max_replicas")
    @classmethod
    def _max_replicas(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min_replicas")
        if value is not None and low is not None and value < low:
            raise ValueError(f"must be >= min_replicas ({low})")
        return value

    @field_validator("accelerator_duty_cycle_target")
    @classmethod
    def _duty_cycle(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("accelerator") is None:
            raise ValueError("needs an accelerator on this variant")
        return value

    @property
    def replica_bounds(self) -> tuple[int, int]:
        """(min, max) replicas; max defaults to min (no autoscaling)."""
        return self.min_replicas, self.max_replicas or self.min_replicas


class VariantArgs(MachineArgs):
    """One model version behind the endpoint, deployed on its own machines."""

    name: ResourceName = Field(
        description="Logical name used in `traffic`, metrics (ML_ENDPOINTS_VARIANT) and display.",
    )
    image: str = Field(
        description="Serving image with a tag or digest, e.g. from ArtifactRegistry."
    )
    artifact_uri: GcsUri = Field(
        description="gs:// directory of the model artifacts (AIP_STORAGE_URI)."
    )
    model_version: Annotated[
        str, _shaped(_SERVING_VERSION, "1-63 letters, digits, '_', '.', '+' or '-'")
    ] = "1"
    env: VertexEnv = Field(default_factory=dict)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not _IMAGE.match(value):
            raise ValueError(
                "must be a full image reference with a tag or digest, e.g. "
                "'us-central1-docker.pkg.dev/PROJECT/REPO/serving:1.0'"
            )
        if value.endswith(":latest"):
            raise ValueError("pin a version tag or digest; ':latest' changes under a deployment")
        in_artifact_registry(parse(value).repository)
        return value


class RequestLoggingArgs(Frozen):
    """Request/response logging to a BigQuery table."""

    bigquery_table: Annotated[str, _shaped(_BIGQUERY_TABLE, "bq://PROJECT.DATASET[.TABLE]")]
    sampling_rate: Annotated[float, Field(gt=0, le=1)] = 0.1


class SampleArgs(Frozen):
    """What ``ml-endpoints verify`` sends: inline ``instances``, or a JSON ``file`` holding
    ``{"instances": [...]}`` (relative to the stack file's directory)."""

    instances: list[Any] | None = Field(None, min_length=1)
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.instances is None) == (self.file is None):
            raise ValueError("give exactly one of instances or file")
        return self


class VertexAlertsArgs(AlertsConfig):
    """Cloud Monitoring alert policies on the container's signal lines (``vertex.alerts``): the
    same settings as the Prometheus rules; the policies Vertex AI can have are the 5xx burn
    rates, p99 latency, 4xx ratio and drift (:mod:`infra.gcp.signal_alerts`)."""

    notification_channels: list[
        Annotated[
            str,
            _shaped(
                r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$",
                "projects/PROJECT/notificationChannels/ID",
            ),
        ]
    ] = []
    """Where an incident is sent (none: it shows in the Cloud Console only)."""
    readiness: Readiness | None = None
    loading: Loading | None = None
    saturation: Saturation | None = None

    @field_validator("readiness", "loading", "saturation")
    @classmethod
    def _kubernetes_only(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "not an alert policy on Vertex AI (its policies: availability, latency, "
                "client_errors, drift; Vertex AI itself replaces replicas that fail the health "
                "route); leave it out"
            )


class VertexEndpointArgs(Frozen):
    """A Vertex AI endpoint with named variants and a traffic split by name
    (``ml-endpoints:vertex``)."""

    project: ProjectId
    region: VertexRegion
    display_name: DisplayName
    endpoint_id: EndpointId | None = Field(
        None, description="Fixes the endpoint's name; else `verify` finds it by display name."
    )
    model_name: Annotated[str, _shaped(_SERVING_NAME, "1-63 letters, digits, '_', '.' or '-'")] = (
        Field(description="MODEL_NAME given to the server.")
    )
    labels: Labels = Field(default_factory=dict)
    network: Network | None = Field(
        None, description="Peer the endpoint privately to this VPC network."
    )
    request_logging: RequestLoggingArgs | None = None
    service_account_id: ServiceAccountId | None = Field(
        None, description="Default: derived from the stack and component names."
    )
    deployer: IamMember | None = Field(
        None,
        description="Who runs `pulumi up` (granted actAs on the models' service account); "
        "default: the identity of the credentials Pulumi uses.",
    )
    variants: list[VariantArgs] = Field(min_length=1, max_length=10)
    traffic: dict[str, Weight] | None = Field(None, validate_default=True)
    """Percent of requests by variant name (every variant's weight; a name left out gets 0)."""
    api_endpoint: str | None = Field(
        None,
        description="Vertex AI API host; default REGION-aiplatform.googleapis.com. An http:// "
        "URL means a local emulator and anonymous credentials.",
    )
    operation_timeout_seconds: OperationTimeout = DEFAULT_OPERATION_TIMEOUT_SECONDS
    sample: SampleArgs | None = Field(None, description="What `verify` sends to the endpoint.")
    alerts: VertexAlertsArgs | None = Field(
        None, description="Log-based metrics of the signal lines and alert policies on them."
    )

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, value: list[VariantArgs]) -> list[VariantArgs]:
        check_unique_names([v.name for v in value])
        return value

    @field_validator("traffic")
    @classmethod
    def _traffic(cls, value: dict[str, int] | None, info: ValidationInfo) -> dict[str, int] | None:
        variants: list[VariantArgs] | None = info.data.get("variants")
        if variants is None:  # already reported
            return value
        names = [v.name for v in variants]
        if value is None:
            if len(names) == 1:
                return {names[0]: 100}
            raise ValueError(f"required with several variants: percentages for {names}")
        check_split(names, value)
        return {name: value.get(name, 0) for name in names}

    @model_validator(mode="after")
    def _deployable(self) -> Self:
        problem = private_endpoint_problem(
            self.network, [v.name for v in self.variants]
        ) or operation_timeout_problem(
            self.operation_timeout_seconds, any(v.accelerator for v in self.variants)
        )
        if problem is not None:
            raise problem.error()
        return self

    @property
    def split(self) -> dict[str, int]:
        """Traffic percentage per variant name, every variant present."""
        assert self.traffic is not None  # filled by validation
        return dict(self.traffic)

    @property
    def endpoint_api(self) -> str:
        """The Vertex AI API host the provider and ``verify`` talk to."""
        return self.api_endpoint or f"{self.region}-aiplatform.googleapis.com"


def vertex_args_from_config(data: Any) -> VertexEndpointArgs:
    """Validated args from an ``ml-endpoints:vertex``-shaped mapping."""
    return validate(VertexEndpointArgs, data, VERTEX_KEY)


def artifact_registry_args_from_config(data: Any) -> ArtifactRegistryArgs:
    """Validated args from an ``ml-endpoints:artifact_registry``-shaped mapping."""
    return validate(ArtifactRegistryArgs, data, ARTIFACT_REGISTRY_KEY)
