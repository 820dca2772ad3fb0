"""The declared shapes are accepted by a real API implementation: botocore validates each
request against the service model, moto_server (on 127.0.0.1) executes it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.aws.ecr import EcrRepository
from infra.aws.sagemaker import SageMakerEndpoint
from infra.stack.mocks import RecordingMocks
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare
from tests.infra.aws.replay import ClientFactory, replay
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
    assert len(done) == len([r for r in pulumi_mocks.resources if r.type.startswith("aws:")])

    sagemaker = aws_client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="churn")
    assert endpoint["EndpointStatus"] == "InService"
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert [
        (v["VariantName"], v["InitialVariantWeight"], v["InstanceType"], v["InitialInstanceCount"])
        for v in config["ProductionVariants"]
    ] == [("blue", 75.0, "ml.m5.large", 2), ("green", 25.0, "ml.g4dn.xlarge", 1)]
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
        ("endpoint/churn/variant/green", 1, 3),
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
    }
    assert dimensions == {
        (metric, (("EndpointName", "churn"), ("VariantName", variant)))
        for metric in ("Invocation5XXErrors", "ModelLatency")
        for variant in ("blue", "green")
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
    live = sagemaker.describe_endpoint_config(
        EndpointConfigName=pulumi_mocks.one(CONFIG).inputs["name"]
    )
    assert live["KmsKeyId"] == stacks.KMS_KEY
    assert live["DataCaptureConfig"]["KmsKeyId"] == stacks.KMS_KEY
    model = sagemaker.describe_model(ModelName=live["ProductionVariants"][0]["ModelName"])
    assert model["VpcConfig"] == {
        "Subnets": ["subnet-0a1b2c3d"],
        "SecurityGroupIds": ["sg-0a1b2c3d"],
    }


def test_config_change_coexists_with_the_old_config(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    """Create-before-delete works only if the replacement's name is free while the old
    configuration still exists: replay both generations into one account."""
    before = stacks.two_variants()
    deploy(before, ecr={"name": stacks.REPOSITORY})
    replay(pulumi_mocks, aws_client)
    old = pulumi_mocks.one(CONFIG).inputs["name"]
    pulumi_mocks.resources.clear()

    deploy(
        stacks.changed(before, "variants", 1, "model", "image_tag", value="v1.4.0"),
        ecr={"name": stacks.REPOSITORY},
    )
    new_config = pulumi_mocks.one(CONFIG)
    sagemaker = aws_client("sagemaker")
    existing = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    new_models = [
        m
        for m in pulumi_mocks.of_type("aws:sagemaker/model:Model")
        if m.inputs["name"] not in existing
    ]
    assert len(new_models) == 1, "only the changed variant's model is replaced"
    request = to_request(
        sagemaker, "CreateModel", new_models[0].inputs, renames={"name": "ModelName"}
    )
    sagemaker.create_model(**request)
    sagemaker.create_endpoint_config(
        **to_request(
            sagemaker,
            "CreateEndpointConfig",
            new_config.inputs,
            renames={"name": "EndpointConfigName"},
        )
    )
    names = {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
    assert names == {old, new_config.inputs["name"]}
    live = sagemaker.describe_endpoint_config(EndpointConfigName=new_config.inputs["name"])
    assert [v["VariantName"] for v in live["ProductionVariants"]] == ["blue", "green"]


def test_unknown_properties_fail_the_replay(
    pulumi_mocks: RecordingMocks, aws_client: ClientFactory
) -> None:
    deploy(stacks.one_variant())
    inputs = dict(pulumi_mocks.one(CONFIG).inputs)
    inputs["productionVariants"] = [{**inputs["productionVariants"][0], "initialWieght": 1.0}]
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
    with pytest.raises(ClientError, match=r"ml\.g5\.xlarge"):
        replay(pulumi_mocks, aws_client)
