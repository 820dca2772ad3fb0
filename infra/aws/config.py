"""Typed, validated arguments of the AWS components.

Every model is frozen and rejects unknown keys. Build them with
:func:`infra.validation.validate` so an error names its full key path
(``sagemaker.variants[1].weight``); cross-field rules raise at the exact key too. The stack
models (:mod:`infra.stack.config`) reuse the pieces (:class:`InstanceCompute`,
:data:`Environment`, :class:`DeploymentArgs`...), so a stack file's error is reported at the
stack key. Limits come from SageMaker's API model as botocore ships it, not from hand-written
lists.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self, get_args

import botocore.loaders
from pydantic import AfterValidator, Field, field_validator, model_validator

from infra.aws.signal_alarms import SignalAlarmsArgs
from infra.secret_values import Secret
from infra.validation import Frozen, Problem, Weight, check_split, rule_error
from serving import contract

#: Environment variables the component sets on every model container itself: the model's
#: identity, and where its CloudWatch signals go (the endpoint's name and the namespace).
RESERVED_ENVIRONMENT = contract.MODEL_IDENTITY_ENV | {
    contract.SAGEMAKER_ENDPOINT_ENV,
    contract.SIGNALS_NAMESPACE_ENV,
}
#: Longest wait SageMaker allows one blue/green deployment (MaximumExecutionTimeoutInSeconds).
#: The API model allows 28800 s, but pulumi-aws's provider validates 600-14400
#: (hashicorp/terraform-provider-aws internal/service/sagemaker/endpoint.go,
#: ``maximum_execution_timeout_in_seconds``: ``validation.IntBetween(600, 14400)``): the
#: stricter bound keeps a stack valid on either path.
MAX_DEPLOYMENT_S = 14_400
#: SageMaker's AutoRollbackConfig takes 1-10 alarms (AlarmList in the API model).
MAX_ROLLBACK_ALARMS = 10
#: Margin on top of the baking waits for SageMaker's own deployment timeout.
DEPLOYMENT_MARGIN_S = 600
#: Hard limit of one SageMaker invocation: a latency alarm above it can never fire.
INVOCATION_LIMIT_MS = 60_000

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ECR_REPOSITORY = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ECR_URI = (
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
)
ECR_IMAGE = re.compile(_ECR_URI + r"(?::(?P<tag>\w[\w.-]{0,127})|@sha256:[a-f0-9]{64})$")
ECR_REPOSITORY_URI = re.compile(_ECR_URI + "$")
"""An ECR repository URI without tag (``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME``)."""
S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+$")
_ENV_KEY = re.compile(contract.ENV_NAME_PATTERN)
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_IMAGE_TAG = re.compile(r"^\w[\w.-]{0,127}$")


@functools.cache
def sagemaker_instance_types() -> frozenset[str]:
    """``ProductionVariantInstanceType`` from the SageMaker API model botocore ships."""
    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    return frozenset(model["shapes"]["ProductionVariantInstanceType"]["enum"])


def local_storage(instance_type: str) -> bool:
    """Whether a hosting instance type has NVMe instance storage instead of an EBS volume.

    aws/sagemaker-python-sdk ``sagemaker/utils.py::volume_size_supported``: "Any instance type
    with a 'd' in the instance family (i.e. c5d, p4d, etc) + g5 does not support attaching an
    EBS volume". The CreateEndpointConfig reference: ``KmsKeyId`` "does not encrypt instance
    local storage", and the SDK refuses a volume key there ("KMS key is not supported for NVMe
    instance storage", aws/sagemaker-python-sdk#3677).
    """
    family = instance_type.removeprefix("ml.").split(".", 1)[0]
    return "d" in family or family.startswith("g5")


def local_storage_problem(instance_type: str | None, volume_size_gb: int | None) -> Problem | None:
    """``volume_size_gb`` on an instance type without an EBS volume."""
    if instance_type is None or volume_size_gb is None or not local_storage(instance_type):
        return None
    return Problem(
        ("volume_size_gb",),
        f"{instance_type} has NVMe instance storage and no EBS volume to size; remove "
        "volume_size_gb or use a family without local storage (no 'd', not g5)",
        volume_size_gb,
    )


def volume_key_message(instance_types: Sequence[str]) -> str:
    """Why a volume KMS key cannot go with these instance types."""
    return (
        f"{', '.join(sorted(set(instance_types)))} keep data on NVMe instance storage, which "
        "SageMaker encrypts in hardware and KmsKeyId cannot; remove kms_key_arn or use a family "
        "without local storage (no 'd', not g5)"
    )


def _sagemaker_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit"
        )
    return value


def _instance_type(value: str) -> str:
    known = sagemaker_instance_types()
    if value not in known:
        close = difflib.get_close_matches(value, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            "not a SageMaker hosting instance type (ProductionVariantInstanceType in "
            f"botocore's SageMaker API model){hint}"
        )
    return value


def _kms_key_arn(value: str) -> str:
    if not _KMS_KEY_ARN.match(value):
        raise ValueError("must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)")
    return value


def _s3_object_uri(value: str) -> str:
    match = S3_URI.match(value)
    if not match or not match["key"]:
        raise ValueError("must be an S3 object URI: s3://BUCKET/KEY")
    return value


def _s3_prefix_uri(value: str) -> str:
    if not S3_URI.match(value):
        raise ValueError("must be an S3 URI: s3://BUCKET[/PREFIX]")
    return value


def _ecr_image(value: str) -> str:
    if not ECR_IMAGE.match(value):
        raise ValueError(
            "must be an ECR image URI: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG "
            "(or @sha256:DIGEST)"
        )
    return value


def _environment(value: dict[str, str | Secret]) -> dict[str, str | Secret]:
    for key, item in value.items():
        if not _ENV_KEY.match(key):
            raise ValueError(f"{key!r} is not a valid variable name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if key in RESERVED_ENVIRONMENT:
            raise ValueError(
                f"{key} is set by the component (from model_name, model_version, the variant "
                "name, the endpoint name and metrics_namespace); remove it"
            )
        if len(item.reveal() if isinstance(item, Secret) else item) > 1024:
            raise ValueError(f"value of {key} is longer than 1024 characters")
    return value


SageMakerName = Annotated[str, AfterValidator(_sagemaker_name)]
S3ObjectUri = Annotated[str, AfterValidator(_s3_object_uri)]
InstanceType = Annotated[str, AfterValidator(_instance_type)]
Environment = Annotated[dict[str, str | Secret], Field(max_length=97), AfterValidator(_environment)]
"""Environment of the model containers; the serving contract's own variables are refused.
Values set with ``--secret`` stay :class:`~infra.secret_values.Secret` (secret Outputs)."""
KmsKeyArn = Annotated[str, AfterValidator(_kms_key_arn)]
ImageTag = Annotated[str, Field(pattern=_IMAGE_TAG.pattern)]
AccountId = Annotated[str, Field(pattern=_ACCOUNT_ID.pattern)]
Seconds3600 = Annotated[int, Field(ge=0, le=3600)]
HealthTimeout = Annotated[int, Field(ge=60, le=3600)]


# --------------------------------------------------------------------------------------- ECR


class EcrRepositoryArgs(Frozen):
    """A private ECR repository for serving images (``ml-endpoints:ecr``)."""

    name: Annotated[str, Field(min_length=2, max_length=256, pattern=_ECR_REPOSITORY.pattern)]
    #: Encrypt with this KMS key; AES256 (S3-managed keys) when unset.
    kms_key_arn: KmsKeyArn | None = None
    #: Untagged images are expired this many days after push.
    untagged_expiry_days: Annotated[int, Field(ge=1)] = 14
    #: Keep this many release images (tags matching a release pattern); older ones expire.
    keep_releases: Annotated[int, Field(ge=1)] = 30
    #: ECR ``tagPatternList`` patterns of release tags (``*`` wildcards, at most 4 each); the
    #: project's release tags are versions such as ``1.5.2``.
    release_tag_patterns: Annotated[
        tuple[Annotated[str, Field(pattern=r"^[\w.*-]{1,128}$")], ...], Field(min_length=1)
    ] = ("*.*.*",)
    #: Tags of images a stack references (its release and previous release): never expired.
    protected_tags: tuple[ImageTag, ...] = ()
    #: Production: Pulumi refuses to delete or replace the repository.
    protect: bool = False
    #: Accounts allowed to pull (cross-account SageMaker or clusters); no policy when empty.
    pull_account_ids: tuple[AccountId, ...] = ()
    #: Delete the repository even if it still holds images.
    force_delete: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    #: The repository exists already (made by hand, by another tool or stack): the stack takes
    #: it over with Pulumi's ``import`` resource option instead of failing on "already exists".
    #: May stay on after the import (the engine then treats it like any other resource).
    adopt: bool = False

    @property
    def import_id(self) -> str | None:
        """The ID the stack imports the repository by when it is adopted (:attr:`adopt`): its name
        (pulumi-aws ``aws.ecr.Repository``, "Import": "import ECR Repositories using the
        ``name``"; terraform-provider-aws ``internal/service/ecr/repository.go`` sets the ID to
        the repository name and imports it as it is)."""
        return self.name if self.adopt else None

    @model_validator(mode="after")
    def _adoptable(self) -> Self:
        """``force_delete`` lives in the stack only (ECR has no such setting; the provider
        never reads it back), so an imported repository has none: asking for it in the same
        run makes the import differ from the program and Pulumi refuses it ("inputs to import
        do not match the existing resource")."""
        if self.adopt and self.force_delete:
            raise rule_error(
                ("force_delete",),
                "an adopted repository is imported without force_delete (ECR does not store "
                "it, so the import would differ from the stack and fail); leave it false for "
                "the import and set it in a later change",
                self.force_delete,
            )
        return self


# --------------------------------------------------------------------------------- SageMaker


class VpcArgs(Frozen):
    """Run the model containers in these subnets with these security groups."""

    subnet_ids: Annotated[tuple[str, ...], Field(min_length=1, max_length=16)]
    security_group_ids: Annotated[tuple[str, ...], Field(min_length=1, max_length=5)]


class ModelArgs(Frozen):
    """One ``sagemaker.Model``: which image serves which artifacts."""

    #: Any ECR image URI; or leave unset and give ``image_tag`` in the component's repository.
    image: Annotated[str, AfterValidator(_ecr_image)] | None = None
    image_tag: ImageTag | None = None
    #: ``s3://BUCKET/KEY`` of the artifacts (.tar.gz), unpacked to /opt/ml/model.
    model_data_url: S3ObjectUri
    #: MODEL_NAME and MODEL_VERSION of the serving container (they label its metrics).
    model_name: Annotated[str, Field(min_length=1, max_length=128)] = "model"
    model_version: Annotated[str, Field(min_length=1, max_length=64)] = "1"
    environment: Environment = Field(default_factory=dict)
    vpc: VpcArgs | None = None
    network_isolation: bool = False

    @model_validator(mode="after")
    def _one_image(self) -> Self:
        if (self.image is None) == (self.image_tag is None):
            raise rule_error(
                ("image",),
                "give exactly one of image (an ECR URI) or image_tag (a tag in the component's "
                "repository)",
                self.image,
            )
        return self


class ServerlessArgs(Frozen):
    """Serverless inference instead of instances."""

    memory_mb: Annotated[int, Field(ge=1024, le=6144, multiple_of=1024)]
    max_concurrency: Annotated[int, Field(ge=1, le=200)]
    provisioned_concurrency: Annotated[int, Field(ge=1, le=200)] | None = None

    @model_validator(mode="after")
    def _provisioned_within_max(self) -> Self:
        if self.provisioned_concurrency and self.provisioned_concurrency > self.max_concurrency:
            raise rule_error(
                ("provisioned_concurrency",),
                f"must be <= max_concurrency ({self.max_concurrency})",
                self.provisioned_concurrency,
            )
        return self


class AutoscalingArgs(Frozen):
    """Application Auto Scaling of a variant's instance count (target tracking)."""

    min_instances: Annotated[int, Field(ge=1)]
    max_instances: Annotated[int, Field(ge=1)]
    #: ``SageMakerVariantInvocationsPerInstance`` (per minute) to hold.
    target_invocations_per_instance: Annotated[float, Field(gt=0)]
    scale_in_cooldown_s: Annotated[int, Field(ge=0)] = 300
    scale_out_cooldown_s: Annotated[int, Field(ge=0)] = 60
    disable_scale_in: bool = False

    @model_validator(mode="after")
    def _max_above_min(self) -> Self:
        if self.max_instances < self.min_instances:
            raise rule_error(
                ("max_instances",),
                f"must be >= min_instances ({self.min_instances})",
                self.max_instances,
            )
        return self


class Capacity(Frozen):
    """How many instances a variant runs and how they scale."""

    instance_count: Annotated[int, Field(ge=1)] = 1
    autoscaling: AutoscalingArgs | None = None
    volume_size_gb: Annotated[int, Field(ge=1, le=512)] | None = None
    container_startup_health_check_timeout_s: HealthTimeout | None = None

    @model_validator(mode="after")
    def _count_within_autoscaling(self) -> Self:
        if self.autoscaling is not None and not (
            self.autoscaling.min_instances <= self.instance_count <= self.autoscaling.max_instances
        ):
            raise rule_error(
                ("instance_count",),
                f"must lie within autoscaling min_instances..max_instances "
                f"({self.autoscaling.min_instances}..{self.autoscaling.max_instances})",
                self.instance_count,
            )
        return self


class InstanceCompute(Capacity):
    """Instances of one variant (a stack's ``ml-endpoints:sagemaker.compute``)."""

    instance_type: InstanceType

    @model_validator(mode="after")
    def _volume(self) -> Self:
        problem = local_storage_problem(self.instance_type, self.volume_size_gb)
        if problem is not None:
            raise problem.error(())
        return self


class VariantArgs(Capacity):
    """A production (or shadow) variant. Keep names stable: blue/green updates require it."""

    name: SageMakerName
    model: ModelArgs
    weight: Weight = 100
    """Percent of the endpoint's requests; the production variants' weights add up to 100. A
    shadow variant's weight is the percent of those requests copied to it."""
    instance_type: InstanceType | None = None
    serverless: ServerlessArgs | None = None
    model_data_download_timeout_s: HealthTimeout | None = None

    @model_validator(mode="after")
    def _compute(self) -> Self:
        if (self.instance_type is None) == (self.serverless is None):
            raise rule_error(
                ("instance_type",), "give exactly one of instance_type or serverless", None
            )
        problem = local_storage_problem(self.instance_type, self.volume_size_gb)
        if problem is not None:
            raise problem.error(())
        if self.serverless is not None:
            for key in ("autoscaling", "volume_size_gb"):
                if getattr(self, key) is not None:
                    raise rule_error(
                        (key,), "not supported on a serverless variant", getattr(self, key)
                    )
            if self.model.vpc is not None or self.model.network_isolation:
                raise rule_error(
                    ("model", "vpc" if self.model.vpc else "network_isolation"),
                    "serverless endpoints support neither VPC configuration nor network isolation",
                    None,
                )
        return self


class DataCaptureArgs(Frozen):
    """SageMaker data capture: what drift analysis reads. On unless ``enabled: false``."""

    enabled: bool = True
    #: ``s3://BUCKET/PREFIX``; records land under ``PREFIX/ENDPOINT/VARIANT/yyyy/mm/dd/hh/``.
    destination_s3_uri: Annotated[str, AfterValidator(_s3_prefix_uri)] | None = None
    sampling_percentage: Annotated[int, Field(ge=0, le=100)] = 100
    capture_input: bool = True
    capture_output: bool = True
    kms_key_arn: KmsKeyArn | None = None
    json_content_types: tuple[str, ...] = ("application/json",)
    csv_content_types: tuple[str, ...] = ("text/csv",)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.enabled and self.destination_s3_uri is None:
            raise rule_error(
                ("destination_s3_uri",),
                "required: data capture is on by default (set enabled: false to turn it off)",
                None,
            )
        if self.enabled and not (self.capture_input or self.capture_output):
            raise rule_error(
                ("capture_input",), "capture_input and capture_output cannot both be false", False
            )
        return self


class CapacityStep(Frozen):
    """Traffic-shifting step: a percentage of the new fleet or a number of its instances."""

    unit: Literal["percent", "instances"] = "percent"
    value: Annotated[int, Field(ge=1)]


class DeploymentArgs(Frozen):
    """Blue/green traffic shifting for endpoint updates."""

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    #: Canary size or linear step; defaults to 10 % (canary) or 20 % (linear).
    step: CapacityStep | None = None
    #: Baking time after each traffic shift, watched by the rollback alarms.
    wait_interval_s: Seconds3600 = 300
    #: Extra time the old fleet is kept after the shift completed.
    termination_wait_s: Seconds3600 = 0
    #: Upper bound SageMaker allows the deployment; derived from the intervals when unset.
    maximum_execution_timeout_s: Annotated[int, Field(ge=600, le=MAX_DEPLOYMENT_S)] | None = None
    auto_rollback: bool = True

    @model_validator(mode="after")
    def _step_fits_strategy(self) -> Self:
        if self.strategy == "all_at_once" and self.step is not None:
            raise rule_error(("step",), "only canary and linear strategies take a step", None)
        if self.step is not None and self.step.unit == "percent":
            low = 10 if self.strategy == "linear" else 1
            if not low <= self.step.value <= 50:
                raise rule_error(
                    ("step", "value"),
                    f"a {self.strategy} step must be {low}-50 percent of the new fleet",
                    self.step.value,
                )
        return self

    @property
    def effective_step(self) -> CapacityStep | None:
        """The step SageMaker is told to use (the documented default when none is given)."""
        if self.strategy == "all_at_once":
            return None
        if self.step is not None:
            return self.step
        return CapacityStep(value=10 if self.strategy == "canary" else 20)

    def shifts(self, instance_counts: Sequence[int]) -> int:
        """Traffic shifts of one update, each followed by a baking wait: 1 (all at once),
        2 (canary, then the rest) or one per linear step over the largest variant."""
        step = self.effective_step
        if step is None:
            return 1
        if self.strategy == "canary":
            return 2
        if step.unit == "percent":
            return math.ceil(100 / step.value)
        return max(math.ceil(count / step.value) for count in instance_counts)

    def rollout_s(self, instance_counts: Sequence[int]) -> int:
        """Seconds an update spends waiting: the baking waits plus the termination wait."""
        return self.shifts(instance_counts) * self.wait_interval_s + self.termination_wait_s

    def execution_timeout_s(self, instance_counts: Sequence[int]) -> int:
        """SageMaker's ``MaximumExecutionTimeoutInSeconds``: as given, else the waits plus a
        margin (within SageMaker's 600-28800 s)."""
        if self.maximum_execution_timeout_s is not None:
            return self.maximum_execution_timeout_s
        return max(600, self.rollout_s(instance_counts) + DEPLOYMENT_MARGIN_S)

    def _step_problem(self, step: CapacityStep, where: str, count: int) -> Problem | None:
        """A canary or linear step moves whole instances of the new fleet: at least one and at
        most half of it (TrafficRoutingConfig CanarySize: "Value must be less than or equal to
        50% of the variant's total instance count"; LinearStepSize "10-50%"). So a one-instance
        fleet cannot canary."""
        moved = step.value if step.unit == "instances" else math.ceil(step.value * count / 100)
        low = 0.1 if self.strategy == "linear" else 0.0
        if 2 * moved <= count and moved >= low * count:
            return None
        key: tuple[str, ...] = ("step", "value") if self.step is not None else ("strategy",)
        value: Any = step.value if self.step is not None else self.strategy
        shown = f"{step.value} instances" if step.unit == "instances" else f"{step.value}%"
        return Problem(
            key,
            f"a {self.strategy} step of {shown} moves {moved} of the {count} instances of "
            f"{where}; SageMaker needs at least one and at most half "
            f"({'10-50%' if self.strategy == 'linear' else 'at most 50%'} of the fleet): give "
            f"{where} at least 2 instances or use strategy all_at_once",
            value,
        )

    def fleet_problem(self, fleet: Sequence[tuple[str, int | None]]) -> Problem | None:
        """What is wrong with this rollout for ``fleet`` (per variant: where its instance count
        is set, and the count, None for serverless), located under this model; None if it fits.

        Written once for the component's args and the stack that builds them, each locating
        the count in its own keys.
        """
        step = self.effective_step
        if step is not None:
            for where, count in fleet:
                if count is None:
                    if step.unit == "instances":
                        return Problem(
                            ("step", "unit"),
                            "serverless variants have no instances; use unit: percent",
                            step.unit,
                        )
                    continue
                problem = self._step_problem(step, where, count)
                if problem is not None:
                    return problem
        counts = [count or 0 for _, count in fleet]
        waits = self.rollout_s(counts)
        given = self.maximum_execution_timeout_s
        if given is not None and given <= waits:
            return Problem(
                ("maximum_execution_timeout_s",),
                f"must exceed the rollout's waits ({self.shifts(counts)} x "
                f"wait_interval_s + termination_wait_s = {waits} s)",
                given,
            )
        if given is None and waits + DEPLOYMENT_MARGIN_S > MAX_DEPLOYMENT_S:
            return Problem(
                ("wait_interval_s",),
                f"the rollout waits {waits} s in total; SageMaker allows one deployment "
                f"{MAX_DEPLOYMENT_S} s including a {DEPLOYMENT_MARGIN_S} s margin",
                self.wait_interval_s,
            )
        return None


class AlarmArgs(Frozen):
    """One CloudWatch alarm that rolls a deployment back (and stays on afterwards)."""

    threshold: Annotated[float, Field(gt=0)]
    #: 10, 30 or a multiple of 60 (CloudWatch's rule).
    period_s: int = 60
    evaluation_periods: Annotated[int, Field(ge=1)] = 1
    datapoints_to_alarm: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _cloudwatch_rules(self) -> Self:
        if self.period_s not in (10, 30) and (self.period_s <= 0 or self.period_s % 60):
            raise rule_error(("period_s",), "must be 10, 30 or a multiple of 60", self.period_s)
        if self.datapoints_to_alarm and self.datapoints_to_alarm > self.evaluation_periods:
            raise rule_error(
                ("datapoints_to_alarm",),
                f"must be <= evaluation_periods ({self.evaluation_periods})",
                self.datapoints_to_alarm,
            )
        return self


class ErrorAlarmArgs(AlarmArgs):
    """``Invocation5XXErrors`` (sum per period) at or above ``threshold``."""

    threshold: Annotated[float, Field(ge=1)] = 1


class LatencyAlarmArgs(AlarmArgs):
    """``ModelLatency`` statistic above ``threshold`` milliseconds."""

    threshold: Annotated[float, Field(gt=0, le=INVOCATION_LIMIT_MS)] = 1000
    statistic: Annotated[str, Field(pattern=r"^(Average|Maximum|p\d{1,2}(\.\d{1,2})?)$")] = "p99"
    evaluation_periods: Annotated[int, Field(ge=1)] = 3


#: Alarms of a production variant that may roll a blue/green update back, in the order they are
#: listed to SageMaker: SageMaker's own metrics, then the container's signals.
RollbackSignal = Literal[
    "invocation_5xx_errors", "model_latency", "container_5xx", "container_latency", "drift"
]
ROLLBACK_SIGNALS: tuple[RollbackSignal, ...] = get_args(RollbackSignal)
#: The signals whose alarms come from the container's EMF lines (``signals`` below).
CONTAINER_SIGNALS = frozenset({"container_5xx", "container_latency", "drift"})


class RollbackAlarmsArgs(Frozen):
    """The alarms the component creates per production variant, and which roll updates back.

    ``invocation_5xx_errors`` and ``model_latency`` watch SageMaker's ``AWS/SageMaker`` metrics;
    ``signals`` the container's own (5xx ratio, p99 latency, drift), which it writes as EMF
    lines on stdout (:mod:`infra.aws.signal_alarms`). Every alarm exists (for paging);
    ``rollback_on`` says which of them SageMaker watches during a blue/green update.
    """

    invocation_5xx_errors: ErrorAlarmArgs = ErrorAlarmArgs()
    model_latency: LatencyAlarmArgs = LatencyAlarmArgs()
    signals: SignalAlarmsArgs = SignalAlarmsArgs()
    rollback_on: tuple[RollbackSignal, ...] = ("invocation_5xx_errors", "model_latency")

    @model_validator(mode="after")
    def _rollback_alarms_exist(self) -> Self:
        repeated = sorted({s for s in self.rollback_on if self.rollback_on.count(s) > 1})
        if repeated:
            raise rule_error(
                ("rollback_on",), f"lists {', '.join(repeated)} more than once", self.rollback_on
            )
        missing = [
            s
            for s in self.rollback_on
            if s in CONTAINER_SIGNALS and getattr(self.signals, s) is None
        ]
        if missing:
            raise rule_error(
                ("rollback_on",),
                f"{missing[0]} has no alarm (signals.{missing[0]} is null); configure it or "
                "remove it from rollback_on",
                self.rollback_on,
            )
        return self

    @property
    def rollback_signals(self) -> tuple[RollbackSignal, ...]:
        """``rollback_on`` in the canonical order (reordering the list changes nothing)."""
        return tuple(s for s in ROLLBACK_SIGNALS if s in self.rollback_on)

    def rollback_problem(self, variants: int) -> Problem | None:
        """More rollback alarms than SageMaker's AutoRollbackConfig takes (AlarmList: 1-10), for
        ``variants`` production variants with auto-rollback on."""
        per_variant = len(self.rollback_on)
        if per_variant * variants <= MAX_ROLLBACK_ALARMS:
            return None
        return Problem(
            ("rollback_on",),
            f"{per_variant} rollback alarms per production variant x {variants} variants = "
            f"{per_variant * variants}; SageMaker takes at most {MAX_ROLLBACK_ALARMS} "
            "(AutoRollbackConfig.Alarms): roll back on fewer signals, use fewer variants, or "
            "set deployment.auto_rollback: false",
            list(self.rollback_on),
        )


class SamplePayload(Frozen):
    """What ``ml-endpoints verify`` sends to every variant: inline ``body`` or a ``file``
    (relative to the stack file's directory)."""

    content_type: str = "application/json"
    accept: str | None = None
    body: str | dict[str, Any] | list[Any] | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.body is None) == (self.file is None):
            raise rule_error(("body",), "give exactly one of body or file", None)
        return self


class SageMakerEndpointArgs(Frozen):
    """A real-time SageMaker endpoint (``ml-endpoints:sagemaker``)."""

    endpoint_name: SageMakerName
    variants: Annotated[tuple[VariantArgs, ...], Field(max_length=10)]
    #: Receives a copy of the production variant's requests (its weight: the percent copied);
    #: its answers are discarded, and captured like any variant's.
    shadow_variant: VariantArgs | None = None
    deployment: DeploymentArgs = DeploymentArgs()
    alarms: RollbackAlarmsArgs = RollbackAlarmsArgs()
    data_capture: DataCaptureArgs = Field(default_factory=dict, validate_default=True)
    #: Encrypts the instances' storage volumes.
    kms_key_arn: KmsKeyArn | None = None
    #: The KMS key of the model data's bucket, if it uses SSE-KMS (the role may decrypt via S3).
    model_data_kms_key_arn: KmsKeyArn | None = None
    #: Production: Pulumi refuses to delete or replace the endpoint.
    protect: bool = False
    #: A ``Failed`` endpoint (SageMaker only lets it be deleted): True, the provider deletes and
    #: recreates it; False, ``pulumi up`` stops and says what to do. Unset: recreate unless
    #: ``protect`` (:attr:`recreates_failed_endpoint`).
    recreate_failed_endpoint: bool | None = None
    #: CloudWatch namespace of the container's signals (its EMF lines; the signal alarms).
    metrics_namespace: Annotated[str, Field(min_length=1, max_length=255)] = "ml-endpoints"
    sample_payload: SamplePayload | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("variants")
    @classmethod
    def _split(cls, value: tuple[VariantArgs, ...]) -> tuple[VariantArgs, ...]:
        # not Field(min_length=1): that also reports an empty tuple when an item is invalid
        if not value:
            raise ValueError("at least one variant is required")
        check_split([v.name for v in value], {v.name: v.weight for v in value})
        return value

    @model_validator(mode="after")
    def _endpoint_rules(self) -> Self:
        shadow = self.shadow_variant
        if shadow is not None:
            index = next((i for i, v in enumerate(self.variants) if v.name == shadow.name), None)
            if index is not None:
                raise rule_error(
                    ("shadow_variant", "name"),
                    f"duplicate variant name (also used by variants[{index}])",
                    shadow.name,
                )
        every = self.all_variants
        serverless = [i for i, v in enumerate(every) if v.serverless is not None]
        if serverless and len(every) > 1:
            first = serverless[0]
            where: tuple[str | int, ...] = (
                ("variants", first) if first < len(self.variants) else ("shadow_variant",)
            )
            raise rule_error(
                (*where, "serverless"),
                "a serverless endpoint has exactly one variant (no second or shadow variant)",
                None,
            )
        if serverless and self.data_capture.enabled:
            raise rule_error(
                ("data_capture", "enabled"),
                "serverless endpoints do not support data capture; set it to false",
                True,
            )
        if shadow is not None and len(self.variants) != 1:
            raise rule_error(
                ("shadow_variant",),
                "a shadow variant needs exactly one production variant",
                len(self.variants),
            )
        if self.kms_key_arn is not None:
            nvme = [
                v.instance_type for v in every if v.instance_type and local_storage(v.instance_type)
            ]
            if nvme:
                raise rule_error(("kms_key_arn",), volume_key_message(nvme), self.kms_key_arn)
        if self.deployment.auto_rollback:
            alarms = self.alarms.rollback_problem(len(self.variants))
            if alarms is not None:
                raise alarms.error(("alarms",))
        fleet = [
            (f"variants[{i}].instance_count", None if v.serverless else v.instance_count)
            for i, v in enumerate(self.variants)
        ]
        problem = self.deployment.fleet_problem(fleet)
        if problem is not None:
            raise problem.error(("deployment",))
        return self

    @property
    def recreates_failed_endpoint(self) -> bool:
        """Whether the provider deletes and recreates a ``Failed`` endpoint: as configured,
        else everywhere but in production (``protect``), where a person reads the
        ``FailureReason`` first (:mod:`infra.aws.endpoint_provider`)."""
        if self.recreate_failed_endpoint is None:
            return not self.protect
        return self.recreate_failed_endpoint

    @property
    def all_variants(self) -> tuple[VariantArgs, ...]:
        """Production variants, then the shadow variant if any."""
        return (*self.variants, *([self.shadow_variant] if self.shadow_variant else []))

    def normalised_weights(self) -> dict[str, float]:
        """Production variant name -> share of requests (sums to 1)."""
        return {v.name: v.weight / 100 for v in self.variants}
