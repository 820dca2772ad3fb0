"""SageMakerEndpoint under Pulumi mocks: the resource graph and every promised property."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.aws.config import SageMakerEndpointArgs
from infra.aws.ecr import EcrRepository
from infra.aws.sagemaker import SageMakerEndpoint
from infra.stack.mocks import RecordingMocks
from infra.validation import ConfigError, validate
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare

COMPONENT = "ml-endpoints:aws:SageMakerEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def deploy(config: dict[str, Any], *, with_repository: bool = False) -> dict[str, Any]:
    def build() -> SageMakerEndpoint:
        repository = (
            EcrRepository("serving", {"name": stacks.REPOSITORY}) if with_repository else None
        )
        return SageMakerEndpoint("churn", config, repository=repository)

    return declare(build)


def models(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    """Variant name -> model inputs."""
    found = {}
    for model in mocks.of_type(MODEL):
        found[model.inputs["primaryContainer"]["environment"]["ML_ENDPOINTS_VARIANT"]] = (
            model.inputs
        )
    return found


def statements(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    document = json.loads(mocks.one(ROLE_POLICY).inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def test_one_variant_graph_parents_and_outputs(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.one_variant())

    types = sorted(r.type for r in pulumi_mocks.resources if r.type != COMPONENT)
    assert types == sorted([ROLE, ROLE_POLICY, MODEL, CONFIG, ALARM, ALARM, ENDPOINT])
    component = pulumi_mocks.one(COMPONENT)
    assert component.name == "churn"
    for resource in pulumi_mocks.resources:
        if resource.type != COMPONENT:
            assert resource.parent is not None
            assert resource.parent.endswith(f"{COMPONENT}::churn"), resource.name
    assert outputs == {
        "endpoint_name": "churn",
        "endpoint_arn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn",
        "endpoint_config_name": pulumi_mocks.one(CONFIG).inputs["name"],
        "variant_weights": {"main": 100},
        "role_arn": "arn:aws:iam::123456789012:role/churn-execution",
        "capture_s3_uri": f"{stacks.CAPTURE}/churn",
    }


def test_one_variant_model_serves_the_contract(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.one_variant())
    model = pulumi_mocks.one(MODEL).inputs
    assert model["primaryContainer"] == {
        "image": stacks.IMAGE,
        "modelDataUrl": "s3://ml-models/churn/v1/model.tar.gz",
        "environment": {
            "MODEL_NAME": "churn",
            "MODEL_VERSION": "v1",
            "ML_ENDPOINTS_VARIANT": "main",
        },
    }
    assert model["executionRoleArn"] == "arn:aws:iam::123456789012:role/churn-execution"
    assert model["enableNetworkIsolation"] is False
    assert "vpcConfig" not in model
    assert model["name"].startswith("churn-main-")

    config = pulumi_mocks.one(CONFIG).inputs
    assert config["productionVariants"] == [
        {
            "variantName": "main",
            "modelName": model["name"],
            "initialVariantWeight": 100.0,
            "instanceType": "ml.m5.large",
            "initialInstanceCount": 1.0,
        }
    ]
    assert pulumi_mocks.one(ENDPOINT).inputs["endpointConfigName"] == config["name"]


def test_data_capture_is_on_by_default(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.one_variant())
    assert pulumi_mocks.one(CONFIG).inputs["dataCaptureConfig"] == {
        "enableCapture": True,
        "destinationS3Uri": stacks.CAPTURE,
        "initialSamplingPercentage": 100.0,
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {
            "jsonContentTypes": ["application/json"],
            "csvContentTypes": ["text/csv"],
        },
    }


def test_two_weighted_variants(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.two_variants(), with_repository=True)

    assert outputs["variant_weights"] == {"blue": 75, "green": 25}
    variants = pulumi_mocks.one(CONFIG).inputs["productionVariants"]
    assert [(v["variantName"], v["initialVariantWeight"]) for v in variants] == [
        ("blue", 75.0),
        ("green", 25.0),
    ]
    assert [(v["instanceType"], v["initialInstanceCount"]) for v in variants] == [
        ("ml.m5.large", 2.0),
        ("ml.g4dn.xlarge", 1.0),
    ]
    images = {name: m["primaryContainer"]["image"] for name, m in models(pulumi_mocks).items()}
    url = f"{stacks.ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{stacks.REPOSITORY}"
    assert images == {"blue": f"{url}:v1.2.0", "green": f"{url}:v1.3.0"}
    assert pulumi_mocks.one(CONFIG).inputs["dataCaptureConfig"]["initialSamplingPercentage"] == 20


def test_autoscaling_per_variant(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.two_variants(), with_repository=True)

    targets = {t.inputs["resourceId"]: t.inputs for t in pulumi_mocks.of_type(TARGET)}
    assert targets == {
        "endpoint/churn/variant/blue": {
            "serviceNamespace": "sagemaker",
            "resourceId": "endpoint/churn/variant/blue",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "minCapacity": 2.0,
            "maxCapacity": 6.0,
        },
        "endpoint/churn/variant/green": {
            "serviceNamespace": "sagemaker",
            "resourceId": "endpoint/churn/variant/green",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "minCapacity": 1.0,
            "maxCapacity": 3.0,
        },
    }
    policies = {p.inputs["resourceId"]: p.inputs for p in pulumi_mocks.of_type(POLICY)}
    green = policies["endpoint/churn/variant/green"]
    assert green["policyType"] == "TargetTrackingScaling"
    assert green["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert green["targetTrackingScalingPolicyConfiguration"] == {
        "targetValue": 100.0,
        "predefinedMetricSpecification": {
            "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        },
        "scaleInCooldown": 600.0,
        "scaleOutCooldown": 30.0,
        "disableScaleIn": False,
    }
    blue = policies["endpoint/churn/variant/blue"]["targetTrackingScalingPolicyConfiguration"]
    assert blue["targetValue"] == 250.0


def test_rollback_alarms_and_blue_green_deployment(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.two_variants(), with_repository=True)

    alarms = {a.inputs["name"]: a.inputs for a in pulumi_mocks.of_type(ALARM)}
    assert sorted(alarms) == [
        "churn-blue-invocation-5xx-errors",
        "churn-blue-model-latency",
        "churn-green-invocation-5xx-errors",
        "churn-green-model-latency",
    ]
    errors = alarms["churn-green-invocation-5xx-errors"]
    assert errors["namespace"] == "AWS/SageMaker"
    assert errors["metricName"] == "Invocation5XXErrors"
    assert errors["dimensions"] == {"EndpointName": "churn", "VariantName": "green"}
    assert (errors["statistic"], errors["threshold"]) == ("Sum", 1.0)
    assert errors["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    latency = alarms["churn-blue-model-latency"]
    assert latency["metricName"] == "ModelLatency"
    assert latency["extendedStatistic"] == "p99"
    assert latency["threshold"] == 1_000_000.0  # 1000 ms in CloudWatch's microseconds

    deployment = pulumi_mocks.one(ENDPOINT).inputs["deploymentConfig"]
    assert deployment["blueGreenUpdatePolicy"] == {
        "trafficRoutingConfiguration": {
            "type": "CANARY",
            "canarySize": {"type": "CAPACITY_PERCENT", "value": 25.0},
            "waitIntervalInSeconds": 900.0,
        },
        "terminationWaitInSeconds": 0.0,
        # two shifts (canary, then the rest) x 900 s + the 600 s margin
        "maximumExecutionTimeoutInSeconds": 2400.0,
    }
    rollback = deployment["autoRollbackConfiguration"]["alarms"]
    assert sorted(a["alarmName"] for a in rollback) == sorted(alarms)


def test_alarm_thresholds_are_configurable(pulumi_mocks: RecordingMocks) -> None:
    config = stacks.changed(
        stacks.one_variant(),
        "alarms",
        value={
            "invocation_5xx_errors": {"threshold": 5, "period_s": 300, "evaluation_periods": 2},
            "model_latency": {"threshold": 250, "statistic": "Average", "period_s": 30},
        },
    )
    deploy(config)
    alarms = {a.inputs["metricName"]: a.inputs for a in pulumi_mocks.of_type(ALARM)}
    errors, latency = alarms["Invocation5XXErrors"], alarms["ModelLatency"]
    assert (errors["threshold"], errors["period"], errors["evaluationPeriods"]) == (5, 300, 2)
    assert (latency["threshold"], latency["statistic"], latency["period"]) == (
        250_000,
        "Average",
        30,
    )
    assert "extendedStatistic" not in latency


def test_endpoint_timeouts_follow_the_rollout(pulumi_mocks: RecordingMocks) -> None:
    slow = stacks.changed(
        stacks.one_variant(),
        "deployment",
        value={
            "strategy": "linear",
            "step": {"value": 10},
            "wait_interval_s": 1800,
            "termination_wait_s": 1200,
        },
    )
    slow["variants"][0]["container_startup_health_check_timeout_s"] = 1200
    deploy(slow)
    # 10 linear shifts x 1800 s + 1200 s termination wait + 600 s margin
    policy = pulumi_mocks.one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy["maximumExecutionTimeoutInSeconds"] == 19_800
    assert policy["trafficRoutingConfiguration"]["linearStepSize"] == {
        "type": "CAPACITY_PERCENT",
        "value": 10.0,
    }
    timeouts = pulumi_mocks.by_name["churn"].custom_timeouts
    # create: 20 min provisioning + 20 min health check + 10 min margin; update adds the rollout
    assert timeouts == {"create": "50m", "update": f"{50 + 19_800 // 60}m", "delete": "20m"}


def test_all_at_once_keeps_default_baking(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.one_variant())
    routing = pulumi_mocks.one(ENDPOINT).inputs["deploymentConfig"]["blueGreenUpdatePolicy"][
        "trafficRoutingConfiguration"
    ]
    assert routing == {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 300.0}


def test_auto_rollback_can_be_turned_off(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.changed(stacks.one_variant(), "deployment", value={"auto_rollback": False}))
    assert "autoRollbackConfiguration" not in pulumi_mocks.one(ENDPOINT).inputs["deploymentConfig"]
    assert len(pulumi_mocks.of_type(ALARM)) == 2  # still there, for paging


def test_replacements_are_created_before_deletion(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.one_variant())
    for resource in [*pulumi_mocks.of_type(MODEL), pulumi_mocks.one(CONFIG)]:
        assert pulumi_mocks.by_name[resource.name].delete_before_replace is False
    endpoint = pulumi_mocks.by_name["churn"]
    alarm_urns = [a for a in endpoint.dependencies if "MetricAlarm" in a]
    assert len(alarm_urns) == 2, "the endpoint must not roll out before its rollback alarms"


def test_serverless(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.serverless())

    config = pulumi_mocks.one(CONFIG).inputs
    (variant,) = config["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 2048.0, "maxConcurrency": 20.0}
    assert "instanceType" not in variant
    assert "initialInstanceCount" not in variant
    assert "dataCaptureConfig" not in config
    assert pulumi_mocks.of_type(TARGET) == []
    assert outputs["capture_s3_uri"] is None
    assert "WriteCapturedData" not in statements(pulumi_mocks)


def test_shadow_variant(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.shadow())

    config = pulumi_mocks.one(CONFIG).inputs
    assert [v["variantName"] for v in config["productionVariants"]] == ["main"]
    (shadow,) = config["shadowProductionVariants"]
    assert (shadow["variantName"], shadow["instanceType"]) == ("candidate", "ml.m5.xlarge")
    candidate = models(pulumi_mocks)["candidate"]
    assert shadow["modelName"] == candidate["name"]
    assert candidate["primaryContainer"]["modelDataUrl"] == "s3://ml-models/churn/v2/model.tar.gz"
    assert outputs["variant_weights"] == {"main": 100}
    dimensions = {a.inputs["dimensions"]["VariantName"] for a in pulumi_mocks.of_type(ALARM)}
    assert dimensions == {"main"}


def _names(mocks: RecordingMocks) -> tuple[str, dict[str, str], list[str]]:
    config = mocks.one(CONFIG).inputs
    model_names = {name: m["name"] for name, m in models(mocks).items()}
    return config["name"], model_names, [v["variantName"] for v in config["productionVariants"]]


def test_config_change_gets_a_new_name_and_keeps_variant_names(
    pulumi_mocks: RecordingMocks,
) -> None:
    before = stacks.two_variants()
    deploy(before, with_repository=True)
    config_before, models_before, variants_before = _names(pulumi_mocks)
    pulumi_mocks.resources.clear()

    after = stacks.changed(before, "variants", 1, "model", "image_tag", value="v1.4.0")
    after = stacks.changed(after, "variants", 0, "weight", value=60)
    after = stacks.changed(after, "variants", 1, "weight", value=40)
    deploy(after, with_repository=True)
    config_after, models_after, variants_after = _names(pulumi_mocks)

    assert config_after != config_before
    assert variants_after == variants_before == ["blue", "green"]
    assert models_after["blue"] == models_before["blue"]
    assert models_after["green"] != models_before["green"]
    assert pulumi_mocks.one(ENDPOINT).inputs["endpointConfigName"] == config_after


def test_names_are_stable_without_changes(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.two_variants(), with_repository=True)
    first = _names(pulumi_mocks)
    pulumi_mocks.resources.clear()
    # autoscaling and alarms are not part of the endpoint configuration
    calmer = stacks.changed(
        stacks.two_variants(), "variants", 0, "autoscaling", "max_instances", value=9
    )
    calmer = stacks.changed(calmer, "alarms", value={"model_latency": {"threshold": 400}})
    deploy(calmer, with_repository=True)
    assert _names(pulumi_mocks) == first


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("variants", 0, "instance_type"), "ml.m5.xlarge"),
        (("variants", 0, "instance_count"), 3),
        (("data_capture", "sampling_percentage"), 50),
        (("kms_key_arn",), stacks.KMS_KEY),
        (("variants", 0, "model", "environment"), {"LOG_LEVEL": "debug"}),
    ],
)
def test_every_config_property_changes_the_config_name(
    pulumi_mocks: RecordingMocks, path: tuple[str | int, ...], value: Any
) -> None:
    deploy(stacks.one_variant())
    before = pulumi_mocks.one(CONFIG).inputs["name"]
    pulumi_mocks.resources.clear()
    deploy(stacks.changed(stacks.one_variant(), *path, value=value))
    assert pulumi_mocks.one(CONFIG).inputs["name"] != before


def test_execution_role_is_least_privilege(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.shadow())

    role = pulumi_mocks.one(ROLE).inputs
    assert "managedPolicyArns" not in role
    trust = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]
    grants = statements(pulumi_mocks)
    for statement in grants.values():
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action, action
            assert "FullAccess" not in action
    assert grants["ReadModelArtifacts"] == {
        "Sid": "ReadModelArtifacts",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": [
            "arn:aws:s3:::ml-models/churn/v1/model.tar.gz",
            "arn:aws:s3:::ml-models/churn/v2/model.tar.gz",
        ],
    }
    assert grants["PullImages"]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{stacks.ACCOUNT}:repository/{stacks.REPOSITORY}"
    ]
    assert grants["WriteCapturedData"]["Action"] == ["s3:PutObject"]
    assert grants["WriteCapturedData"]["Resource"] == ["arn:aws:s3:::ml-capture/churn/churn/*"]
    assert grants["LogGroup"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/churn"
    ]
    assert grants["WriteLogs"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/churn:log-stream:*"
    ]
    assert grants["PublishMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "ml-endpoints"}
    }
    star = sorted(sid for sid, s in grants.items() if s["Resource"] == "*")
    assert star == ["EcrLogin", "PublishMetrics"]  # no resource-level permissions exist
    assert "EncryptCapturedData" not in grants
    assert "ManageNetworkInterfaces" not in grants


def test_role_pulls_only_from_the_components_repository(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.two_variants(), with_repository=True)
    assert statements(pulumi_mocks)["PullImages"]["Resource"] == [
        f"arn:aws:ecr:us-east-1:{stacks.ACCOUNT}:repository/{stacks.REPOSITORY}"
    ]


def test_kms_keys_encrypt_volumes_and_capture(pulumi_mocks: RecordingMocks) -> None:
    config = stacks.changed(stacks.one_variant(), "kms_key_arn", value=stacks.KMS_KEY)
    capture_key = stacks.KMS_KEY.replace("1234abcd", "9999abcd")
    config["data_capture"]["kms_key_arn"] = capture_key
    deploy(config)

    inputs = pulumi_mocks.one(CONFIG).inputs
    assert inputs["kmsKeyArn"] == stacks.KMS_KEY
    assert inputs["dataCaptureConfig"]["kmsKeyId"] == capture_key
    keys = statements(pulumi_mocks)["EncryptCapturedData"]
    assert keys["Resource"] == [capture_key]
    assert keys["Action"] == ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]


def test_vpc_and_network_isolation(pulumi_mocks: RecordingMocks) -> None:
    config = stacks.one_variant()
    config["variants"][0]["model"]["vpc"] = {
        "subnet_ids": ["subnet-1", "subnet-2"],
        "security_group_ids": ["sg-1"],
    }
    config["variants"][0]["model"]["network_isolation"] = True
    deploy(config)

    model = pulumi_mocks.one(MODEL).inputs
    assert model["vpcConfig"] == {"subnets": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"]}
    assert model["enableNetworkIsolation"] is True
    interfaces = statements(pulumi_mocks)["ManageNetworkInterfaces"]["Resource"]
    assert interfaces == [
        "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1",
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-2",
        "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
    ]


def test_invalid_config_fails_before_anything_is_declared(pulumi_mocks: RecordingMocks) -> None:
    bad = stacks.changed(stacks.shadow(), "shadow_variant", "weight", value=-1)
    with pytest.raises(ConfigError, match=r"^sagemaker\.shadow_variant\.weight: "):
        deploy(bad)
    assert pulumi_mocks.resources == []


def test_image_tag_needs_a_repository(pulumi_mocks: RecordingMocks) -> None:
    with pytest.raises(ConfigError) as caught:
        deploy(stacks.two_variants())
    assert caught.value.key == "sagemaker.variants[0].model.image_tag"
    assert "ECR repository" in str(caught.value)
    assert pulumi_mocks.resources == []


def test_typed_args_are_accepted_as_is(pulumi_mocks: RecordingMocks) -> None:
    args = validate(SageMakerEndpointArgs, stacks.one_variant(), "sagemaker")
    outputs = declare(lambda: SageMakerEndpoint("churn", args))
    assert outputs["endpoint_name"] == "churn"
