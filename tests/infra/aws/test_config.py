"""Every configuration rule fails with a message naming the full key path."""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws.config import EcrRepositoryArgs, SageMakerEndpointArgs, sagemaker_instance_types
from infra.validation import ConfigError, validate
from tests.infra.aws import stacks

Case = tuple[dict[str, Any], str, str]


def _serverless_with(**extra: Any) -> dict[str, Any]:
    config = stacks.serverless()
    config["variants"][0].update(extra)
    return config


def _two(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    return stacks.changed(stacks.two_variants(), *path, value=value)


def _one(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    return stacks.changed(stacks.one_variant(), *path, value=value)


def _three_variants(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    config = stacks.two_variants()
    teal = {**config["variants"][1], "name": "teal", "weight": 0}
    config["variants"].append(teal)
    return stacks.changed(config, *path, value=value)


SAGEMAKER_RULES: dict[str, Case] = {
    "endpoint name characters": (
        _one(("endpoint_name",), "churn_prod"),
        "sagemaker.endpoint_name",
        "1-63 letters, digits or hyphens",
    ),
    "endpoint name length": (
        _one(("endpoint_name",), "e" * 64),
        "sagemaker.endpoint_name",
        "1-63 letters",
    ),
    "variant name": (
        _two(("variants", 1, "name"), "green-"),
        "sagemaker.variants[1].name",
        "starting and ending with a letter or digit",
    ),
    "duplicate variant names": (
        _two(("variants", 1, "name"), "blue"),
        "sagemaker.variants",
        "variant names must be unique; repeated: blue",
    ),
    "unknown instance type": (
        _two(("variants", 1, "instance_type"), "ml.g4dn.xlarg"),
        "sagemaker.variants[1].instance_type",
        "not a SageMaker hosting instance type (ProductionVariantInstanceType in botocore's "
        "SageMaker API model); did you mean ml.g4dn.xlarge",
    ),
    "negative weight": (
        _two(("variants", 1, "weight"), -5),
        "sagemaker.variants[1].weight",
        "greater than or equal to 0",
    ),
    "weight above 100 percent": (
        _two(("variants", 1, "weight"), 101),
        "sagemaker.variants[1].weight",
        "less than or equal to 100",
    ),
    "fractional weight": (
        _two(("variants", 1, "weight"), 0.5),
        "sagemaker.variants[1].weight",
        "valid integer",
    ),
    "weights not adding up to 100": (
        _two(("variants",), [{**v, "weight": 0} for v in stacks.two_variants()["variants"]]),
        "sagemaker.variants",
        "weights are percent and must add up to 100, not 0 (blue=0, green=0)",
    ),
    "no variants": (
        _one(("variants",), []),
        "sagemaker.variants",
        "at least one variant is required",
    ),
    "too many variants": (
        _one(
            ("variants",),
            [{**stacks.one_variant()["variants"][0], "name": f"v{i}"} for i in range(11)],
        ),
        "sagemaker.variants",
        "at most 10 items",
    ),
    "instance type and serverless": (
        _serverless_with(instance_type="ml.m5.large"),
        "sagemaker.variants[0].instance_type",
        "exactly one of instance_type or serverless",
    ),
    "neither instance type nor serverless": (
        stacks.without(stacks.one_variant(), "variants", 0, "instance_type"),
        "sagemaker.variants[0].instance_type",
        "exactly one of instance_type or serverless",
    ),
    "serverless memory step": (
        _serverless_with(serverless={"memory_mb": 1536, "max_concurrency": 5}),
        "sagemaker.variants[0].serverless.memory_mb",
        "multiple of 1024",
    ),
    "serverless memory maximum": (
        _serverless_with(serverless={"memory_mb": 7168, "max_concurrency": 5}),
        "sagemaker.variants[0].serverless.memory_mb",
        "less than or equal to 6144",
    ),
    "serverless memory minimum": (
        _serverless_with(serverless={"memory_mb": 0, "max_concurrency": 5}),
        "sagemaker.variants[0].serverless.memory_mb",
        "greater than or equal to 1024",
    ),
    "serverless concurrency maximum": (
        _serverless_with(serverless={"memory_mb": 1024, "max_concurrency": 201}),
        "sagemaker.variants[0].serverless.max_concurrency",
        "less than or equal to 200",
    ),
    "serverless concurrency minimum": (
        _serverless_with(serverless={"memory_mb": 1024, "max_concurrency": 0}),
        "sagemaker.variants[0].serverless.max_concurrency",
        "greater than or equal to 1",
    ),
    "serverless provisioned concurrency": (
        _serverless_with(
            serverless={"memory_mb": 1024, "max_concurrency": 4, "provisioned_concurrency": 5}
        ),
        "sagemaker.variants[0].serverless.provisioned_concurrency",
        "must be <= max_concurrency (4)",
    ),
    "serverless autoscaling": (
        _serverless_with(
            autoscaling={
                "min_instances": 1,
                "max_instances": 2,
                "target_invocations_per_instance": 10,
            }
        ),
        "sagemaker.variants[0].autoscaling",
        "not supported on a serverless variant",
    ),
    "serverless vpc": (
        stacks.changed(
            stacks.serverless(),
            "variants",
            0,
            "model",
            "vpc",
            value={"subnet_ids": ["s-1"], "security_group_ids": ["sg-1"]},
        ),
        "sagemaker.variants[0].model.vpc",
        "neither VPC configuration nor network isolation",
    ),
    "serverless with a second variant": (
        stacks.changed(
            stacks.serverless(),
            "variants",
            value=[
                {**stacks.serverless()["variants"][0], "weight": 50},
                {**stacks.serverless()["variants"][0], "name": "b", "weight": 50},
            ],
        ),
        "sagemaker.variants[0].serverless",
        "exactly one variant",
    ),
    "serverless data capture": (
        stacks.changed(
            stacks.serverless(), "data_capture", value={"destination_s3_uri": stacks.CAPTURE}
        ),
        "sagemaker.data_capture.enabled",
        "serverless endpoints do not support data capture",
    ),
    "shadow with two production variants": (
        _two(("shadow_variant",), stacks.shadow()["shadow_variant"]),
        "sagemaker.shadow_variant",
        "a shadow variant needs exactly one production variant",
    ),
    "shadow name clash": (
        stacks.changed(stacks.shadow(), "shadow_variant", "name", value="main"),
        "sagemaker.shadow_variant.name",
        "duplicate variant name (also used by variants[0])",
    ),
    "data capture destination required": (
        stacks.without(stacks.one_variant(), "data_capture"),
        "sagemaker.data_capture.destination_s3_uri",
        "required: data capture is on by default (set enabled: false to turn it off)",
    ),
    "data capture destination format": (
        _one(("data_capture", "destination_s3_uri"), "https://bucket/prefix"),
        "sagemaker.data_capture.destination_s3_uri",
        "must be an S3 URI",
    ),
    "data capture sampling": (
        _one(("data_capture", "sampling_percentage"), 101),
        "sagemaker.data_capture.sampling_percentage",
        "less than or equal to 100",
    ),
    "data capture nothing captured": (
        _one(
            ("data_capture",),
            {"destination_s3_uri": stacks.CAPTURE, "capture_input": False, "capture_output": False},
        ),
        "sagemaker.data_capture.capture_input",
        "cannot both be false",
    ),
    "data capture kms key": (
        _one(("data_capture", "kms_key_arn"), "alias/capture"),
        "sagemaker.data_capture.kms_key_arn",
        "must be a KMS key ARN",
    ),
    "volume kms key": (
        _one(("kms_key_arn",), "1234abcd"),
        "sagemaker.kms_key_arn",
        "must be a KMS key ARN",
    ),
    "image and image tag": (
        _one(("variants", 0, "model", "image_tag"), "v1"),
        "sagemaker.variants[0].model.image",
        "give exactly one of image (an ECR URI) or image_tag",
    ),
    "image not in ECR": (
        _one(("variants", 0, "model", "image"), "docker.io/library/python:3.12"),
        "sagemaker.variants[0].model.image",
        "must be an ECR image URI",
    ),
    "model data not in S3": (
        _one(("variants", 0, "model", "model_data_url"), "gs://models/model.tar.gz"),
        "sagemaker.variants[0].model.model_data_url",
        "must be an S3 object URI",
    ),
    "reserved environment": (
        _one(("variants", 0, "model", "environment"), {"ML_ENDPOINTS_VARIANT": "x"}),
        "sagemaker.variants[0].model.environment",
        "ML_ENDPOINTS_VARIANT is set by the component",
    ),
    "environment name": (
        _one(("variants", 0, "model", "environment"), {"1BAD": "x"}),
        "sagemaker.variants[0].model.environment",
        "'1BAD' is not a valid variable name",
    ),
    "autoscaling bounds": (
        _two(("variants", 0, "autoscaling", "max_instances"), 1),
        "sagemaker.variants[0].autoscaling.max_instances",
        "must be >= min_instances (2)",
    ),
    "instance count outside autoscaling": (
        _two(("variants", 0, "instance_count"), 7),
        "sagemaker.variants[0].instance_count",
        "must lie within autoscaling min_instances..max_instances (2..6)",
    ),
    "canary too large": (
        _two(("deployment", "step", "value"), 60),
        "sagemaker.deployment.step.value",
        "a canary step must be 1-50 percent of the new fleet",
    ),
    "linear step too small": (
        _two(("deployment",), {"strategy": "linear", "step": {"value": 5}}),
        "sagemaker.deployment.step.value",
        "a linear step must be 10-50 percent",
    ),
    "step with all at once": (
        _two(("deployment",), {"strategy": "all_at_once", "step": {"value": 10}}),
        "sagemaker.deployment.step",
        "only canary and linear strategies take a step",
    ),
    "instance step over half the fleet": (
        _two(("deployment", "step"), {"unit": "instances", "value": 2}),
        "sagemaker.deployment.step.value",
        "moves 2 of the 2 instances of variants[0].instance_count",
    ),
    "unknown strategy": (
        _one(("deployment",), {"strategy": "rolling"}),
        "sagemaker.deployment.strategy",
        "'all_at_once', 'canary' or 'linear'",
    ),
    "wait interval limit": (
        _one(("deployment",), {"wait_interval_s": 3601}),
        "sagemaker.deployment.wait_interval_s",
        "less than or equal to 3600",
    ),
    "rollout longer than SageMaker allows": (
        stacks.changed(
            stacks.changed(stacks.one_variant(), "variants", 0, "instance_count", value=5),
            "deployment",
            value={"strategy": "linear", "step": {"value": 20}, "wait_interval_s": 3000},
        ),
        "sagemaker.deployment.wait_interval_s",
        "the rollout waits 15000 s in total; SageMaker allows one deployment 14400 s",
    ),
    "canary on a one-instance fleet": (
        _one(("deployment",), {"strategy": "canary"}),
        "sagemaker.deployment.strategy",
        "a canary step of 10% moves 1 of the 1 instances of variants[0].instance_count",
    ),
    "execution timeout below the provider's range": (
        _one(("deployment",), {"maximum_execution_timeout_s": 599}),
        "sagemaker.deployment.maximum_execution_timeout_s",
        "greater than or equal to 600",
    ),
    "execution timeout above the provider's range": (
        _one(("deployment",), {"maximum_execution_timeout_s": 14401}),
        "sagemaker.deployment.maximum_execution_timeout_s",
        "less than or equal to 14400",
    ),
    "volume key on NVMe instances": (
        stacks.changed(
            stacks.changed(
                stacks.one_variant(), "variants", 0, "instance_type", value="ml.g5.xlarge"
            ),
            "kms_key_arn",
            value=stacks.KMS_KEY,
        ),
        "sagemaker.kms_key_arn",
        "ml.g5.xlarge keep data on NVMe instance storage",
    ),
    "volume size on NVMe instances": (
        stacks.changed(
            stacks.changed(
                stacks.one_variant(), "variants", 0, "instance_type", value="ml.p4d.24xlarge"
            ),
            "variants",
            0,
            "volume_size_gb",
            value=100,
        ),
        "sagemaker.variants[0].volume_size_gb",
        "ml.p4d.24xlarge has NVMe instance storage and no EBS volume",
    ),
    "execution timeout below the waits": (
        _one(("deployment",), {"wait_interval_s": 900, "maximum_execution_timeout_s": 900}),
        "sagemaker.deployment.maximum_execution_timeout_s",
        "must exceed the rollout's waits (1 x wait_interval_s + termination_wait_s = 900 s)",
    ),
    "error alarm threshold": (
        _one(("alarms",), {"invocation_5xx_errors": {"threshold": 0}}),
        "sagemaker.alarms.invocation_5xx_errors.threshold",
        "greater than or equal to 1",
    ),
    "latency alarm threshold zero": (
        _one(("alarms",), {"model_latency": {"threshold": 0}}),
        "sagemaker.alarms.model_latency.threshold",
        "greater than 0",
    ),
    "latency alarm above the invocation limit": (
        _one(("alarms",), {"model_latency": {"threshold": 60001}}),
        "sagemaker.alarms.model_latency.threshold",
        "less than or equal to 60000",
    ),
    "latency statistic": (
        _one(("alarms",), {"model_latency": {"statistic": "median"}}),
        "sagemaker.alarms.model_latency.statistic",
        "should match pattern",
    ),
    "alarm period": (
        _one(("alarms",), {"model_latency": {"period_s": 45}}),
        "sagemaker.alarms.model_latency.period_s",
        "must be 10, 30 or a multiple of 60",
    ),
    "alarm datapoints": (
        _one(
            ("alarms",),
            {"invocation_5xx_errors": {"evaluation_periods": 2, "datapoints_to_alarm": 3}},
        ),
        "sagemaker.alarms.invocation_5xx_errors.datapoints_to_alarm",
        "must be <= evaluation_periods (2)",
    ),
    "more rollback alarms than SageMaker takes": (
        _three_variants(
            ("alarms",),
            {"rollback_on": ["invocation_5xx_errors", "model_latency", "container_5xx", "drift"]},
        ),
        "sagemaker.alarms.rollback_on",
        "4 rollback alarms per production variant x 3 variants = 12; SageMaker takes at most 10 "
        "(AutoRollbackConfig.Alarms)",
    ),
    "rollback on a signal without alarm": (
        _one(("alarms",), {"signals": {"drift": None}, "rollback_on": ["drift"]}),
        "sagemaker.alarms.rollback_on",
        "drift has no alarm (signals.drift is null)",
    ),
    "rollback on a signal twice": (
        _one(("alarms",), {"rollback_on": ["drift", "model_latency", "drift"]}),
        "sagemaker.alarms.rollback_on",
        "lists drift more than once",
    ),
    "rollback on an unknown signal": (
        _one(("alarms",), {"rollback_on": ["container_4xx"]}),
        "sagemaker.alarms.rollback_on[0]",
        "'invocation_5xx_errors', 'model_latency', 'container_5xx', 'container_latency' or 'drift'",
    ),
    "signal alarm period": (
        _one(("alarms",), {"signals": {"container_latency": {"period_s": 90}}}),
        "sagemaker.alarms.signals.container_latency",
        "period_s must be a multiple of 60",
    ),
    "sample payload source": (
        _one(("sample_payload",), {"body": "{}", "file": "sample.json"}),
        "sagemaker.sample_payload.body",
        "give exactly one of body or file",
    ),
    "unknown key": (
        _one(("variants", 0, "wieght"), 2),
        "sagemaker.variants[0].wieght",
        "Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize(
    ("config", "key", "message"), SAGEMAKER_RULES.values(), ids=SAGEMAKER_RULES
)
def test_sagemaker_rule(config: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(SageMakerEndpointArgs, config, "sagemaker")
    assert caught.value.key == key
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    "config",
    [stacks.one_variant(), stacks.two_variants(), stacks.serverless(), stacks.shadow()],
    ids=["one", "two", "serverless", "shadow"],
)
def test_valid_configs_pass(config: dict[str, Any]) -> None:
    args = validate(SageMakerEndpointArgs, config, "sagemaker")
    assert sum(args.normalised_weights().values()) == pytest.approx(1.0)


def test_args_are_frozen() -> None:
    args = validate(SageMakerEndpointArgs, stacks.one_variant(), "sagemaker")
    with pytest.raises(ValueError, match="frozen"):
        args.endpoint_name = "other"  # type: ignore[misc]


def test_key_paths_nest_under_a_composed_program() -> None:
    """Issue 8 nests these models in one program; paths keep the full prefix."""
    bad = _two(("variants", 1, "weight"), -1)
    with pytest.raises(ConfigError) as caught:
        validate(SageMakerEndpointArgs, bad, "targets.aws.sagemaker")
    assert caught.value.key == "targets.aws.sagemaker.variants[1].weight"


def test_instance_types_come_from_botocore() -> None:
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    enum = model["shapes"]["ProductionVariantInstanceType"]["enum"]
    assert sagemaker_instance_types() == frozenset(enum)
    assert {"ml.g5.xlarge", "ml.m5.large", "ml.inf2.xlarge"} <= sagemaker_instance_types()


ECR_RULES: dict[str, Case] = {
    "repository name": ({"name": "Serving"}, "ecr.name", "should match pattern"),
    "expiry days": (
        {"name": "serving", "untagged_expiry_days": 0},
        "ecr.untagged_expiry_days",
        "greater than or equal to 1",
    ),
    "keep releases": (
        {"name": "serving", "keep_releases": 0},
        "ecr.keep_releases",
        "greater than or equal to 1",
    ),
    "pull account": (
        {"name": "serving", "pull_account_ids": ["12345"]},
        "ecr.pull_account_ids[0]",
        "should match pattern",
    ),
    "kms key": (
        {"name": "serving", "kms_key_arn": "aws/ecr"},
        "ecr.kms_key_arn",
        "must be a KMS key ARN",
    ),
    "release prefixes": (
        {"name": "serving", "release_tag_patterns": []},
        "ecr.release_tag_patterns",
        "at least 1 item",
    ),
}


@pytest.mark.parametrize(("config", "key", "message"), ECR_RULES.values(), ids=ECR_RULES)
def test_ecr_rule(config: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(EcrRepositoryArgs, config, "ecr")
    assert caught.value.key == key
    assert message in str(caught.value)
