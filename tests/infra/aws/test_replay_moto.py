"""The declared shapes are accepted by a real API implementation: botocore validates each
request against the service model, moto_server (on 127.0.0.1) executes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.aws.ecr import EcrRepository
from infra.aws.endpoint_provider import EndpointDeploymentError
from infra.aws.sagemaker import SageMakerEndpoint
from infra.aws.signal_alarms import SignalAlarmsArgs, alarm_requests
from infra.stack.mocks import RecordingMocks
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare
from tests.infra.aws.replay import DEPLOYMENT, ClientFactory, replay
from tests.infra.aws.wire import NoCounterpart, to_request

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def deploy(config: dict[str, Any], *, ecr: dict[str, Any] | None = None) -> None:
    def build() -> SageMakerEndpoint:
        repository = EcrRepository("serving", ecr) if ecr else None
        return SageMakerEndpoint("churn", config, repository=repository)

    declare(build)


def test_two_weighted_variants_with_ecr(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    deploy(
        stacks.two_variants(),
        ecr={"name": stacks.REPOSITORY, "pull_account_ids": ["111111111111"]},
    )
    done = replay(pulumi_mocks, aws_client)
    declared = [r for r in pulumi_mocks.resources if r.type.startswith(("aws:", DEPLOYMENT))]
    assert len(done) == len(declared)

    sagemaker = aws_client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn")
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert [
        (v["VariantName"], v["InitialVariantWeight"], v["InstanceType"], v["InitialInstanceCount"])
        for v in config["ProductionVariants"]
    ] == [("blue", 75.0, "ml.m5.large", 2), ("green", 25.0, "ml.g4dn.xlarge", 2)]
    capture = config["DataCaptureConfig"]
    assert (capture["DestinationS3Uri"], capture["InitialSamplingPercentage"]) == (
        stacks.CAPTURE,
        20,
    )
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][1]["ModelName"])
    assert model["PrimaryContainer"]["Environment"]["ML_ENDPOINTS_VARIANT"] == "green"

    scaling = aws_client("application-autoscaling")
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert sorted((t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets) == [
        ("endpoint/churn/variant/blue", 2, 6),
        ("endpoint/churn/variant/green", 2, 3),
    ]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = {p["ResourceId"]: p["TargetTrackingScalingPolicyConfiguration"] for p in policies}
    green = tracking["endpoint/churn/variant/green"]
    assert green["TargetValue"] == 100.0
    assert green["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )

    alarms = aws_client("cloudwatch").describe_alarms(AlarmNamePrefix="churn-")["MetricAlarms"]
    dimensions = {
        (a["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in a["Dimensions"])))
        for a in alarms
        if a.get("Namespace") == "AWS/SageMaker"
    }
    assert dimensions == {
        (metric, (("EndpointName", "churn"), ("VariantName", variant)))
        for metric in ("Invocation5XXErrors", "ModelLatency")
        for variant in ("blue", "green")
    }
    assert {a["AlarmName"] for a in alarms if a.get("Namespace") != "AWS/SageMaker"} == {
        f"churn-{variant}-{signal}"
        for variant in ("blue", "green")
        for signal in ("container-5xx", "container-latency", "drift")
    }
    latency = next(a for a in alarms if a["AlarmName"] == "churn-blue-model-latency")
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", 1_000_000.0)

    ecr = aws_client("ecr")
    (repository,) = ecr.describe_repositories(repositoryNames=[stacks.REPOSITORY])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    lifecycle = ecr.get_lifecycle_policy(repositoryName=stacks.REPOSITORY)
    rules = json.loads(lifecycle["lifecyclePolicyText"])["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    policy = ecr.get_repository_policy(repositoryName=stacks.REPOSITORY)
    assert "111111111111" in policy["policyText"]

    iam = aws_client("iam")
    document = iam.get_role_policy(RoleName="churn-execution", PolicyName="churn-execution")
    assert document["PolicyDocument"]["Statement"][0]["Sid"] == "ReadModelArtifacts"


def test_serverless(pulumi_mocks: RecordingMocks, aws_client: ClientFactory) -> None:
    deploy(stacks.serverless())
    replay(pulumi_mocks, aws_client)
    sagemaker = aws_client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn-serverless")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 20,
    }


def test_shadow_variant_kms_and_vpc(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    config = stacks.shadow()
    config["kms_key_arn"] = stacks.KMS_KEY
    config["data_capture"]["kms_key_arn"] = stacks.KMS_KEY
    config["variants"][0]["model"]["vpc"] = {
        "subnet_ids": ["subnet-0a1b2c3d"],
        "security_group_ids": ["sg-0a1b2c3d"],
    }
    deploy(config)
    replay(pulumi_mocks, aws_client)
    sagemaker = aws_client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn")
    live = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert live["KmsKeyId"] == stacks.KMS_KEY
    assert live["DataCaptureConfig"]["KmsKeyId"] == stacks.KMS_KEY
    model = sagemaker.describe_model(ModelName=live["ProductionVariants"][0]["ModelName"])
    assert model["VpcConfig"] == {
        "Subnets": ["subnet-0a1b2c3d"],
        "SecurityGroupIds": ["sg-0a1b2c3d"],
    }


def test_unknown_properties_fail_the_replay(aws_client: ClientFactory) -> None:
    inputs = {"productionVariants": [{"variantName": "main", "initialWieght": 1.0}]}
    with pytest.raises(NoCounterpart, match="initialWieght"):
        to_request(aws_client("sagemaker"), "CreateEndpointConfig", inputs)


def test_moto_rejects_instance_types_it_does_not_know(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    """Documents moto's limit: its instance list is older than botocore's (ml.g5 missing),
    which is why these tests use ml.g4dn and the config validates against botocore."""
    deploy(
        stacks.changed(stacks.one_variant(), "variants", 0, "instance_type", value="ml.g5.xlarge")
    )
    with pytest.raises(EndpointDeploymentError, match=r"ml\.g5\.xlarge"):
        replay(pulumi_mocks, aws_client)


def test_signal_alarms_reach_cloudwatch_as_built(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    """Issue 18 item 3: the component declares each alarm on the container's signals as
    ``aws.cloudwatch.MetricAlarm``; sent the way the Terraform provider sends it (metric_query
    blocks -> ``Metrics``, replay.metric_queries), CloudWatch (moto_server) stores exactly the
    ``PutMetricAlarm`` request :func:`alarm_requests` builds (itself checked against the EMF
    lines the container writes, tests/infra/aws/test_signal_alarms.py)."""
    config = stacks.two_variants()
    config["alarms"] = {"signals": {"drift": {"share": 0.25}}}
    deploy(config, ecr={"name": stacks.REPOSITORY})
    replay(pulumi_mocks, aws_client)
    cloudwatch = aws_client("cloudwatch")
    signals = SignalAlarmsArgs(drift={"share": 0.25})
    for variant in ("blue", "green"):
        for request in alarm_requests("churn", variant, "ml-endpoints", signals).values():
            (stored,) = cloudwatch.describe_alarms(AlarmNames=[request["AlarmName"]])[
                "MetricAlarms"
            ]
            assert canonical({key: stored.get(key) for key in request}) == canonical(request)


def canonical(value: Any) -> Any:
    """``Dimensions`` as a set: a metric's identity does not depend on their order (Pulumi
    declares them as a map)."""
    if isinstance(value, dict):
        return {
            k: sorted(v, key=lambda d: d["Name"]) if k == "Dimensions" else canonical(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value
