"""SageMakerEndpoint under Pulumi mocks: the resource graph and every promised property."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.aws.config import SageMakerEndpointArgs
from infra.aws.ecr import EcrRepository
from infra.aws.endpoint_provider import SageMakerEndpointProvider, desired
from infra.aws.sagemaker import SageMakerEndpoint
from infra.stack.mocks import RecordingMocks
from infra.validation import ConfigError, validate
from tests.infra.aws import stacks
from tests.infra.aws.conftest import declare

COMPONENT = "ml-endpoints:aws:SageMakerEndpoint"
DEPLOYMENT = "pulumi-python:dynamic/ml-endpoints/aws:SageMakerDeployment"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def deploy(config: dict[str, Any], *, with_repository: bool = False) -> dict[str, Any]:
    def build() -> SageMakerEndpoint:
        repository = (
            EcrRepository("serving", {"name": stacks.REPOSITORY}) if with_repository else None
        )
        return SageMakerEndpoint("churn", config, repository=repository)

    return declare(build)


def inputs(mocks: RecordingMocks) -> dict[str, Any]:
    """The endpoint's dynamic resource inputs (what its provider receives)."""
    return mocks.one(DEPLOYMENT).inputs


def statements(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    document = json.loads(mocks.one(ROLE_POLICY).inputs["policy"])
    return {s["Sid"]: s for s in document["Statement"]}


def test_one_variant_graph_parents_and_outputs(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.one_variant())

    types = sorted(r.type for r in pulumi_mocks.resources if r.type != COMPONENT)
    # per variant: SageMaker's 5XX and latency, the container's 5xx, latency and drift
    assert types == sorted([ROLE, ROLE_POLICY, *[ALARM] * 5, DEPLOYMENT])
    for resource in pulumi_mocks.resources:
        if resource.type != COMPONENT:
            assert resource.parent is not None
            assert resource.parent.endswith(f"{COMPONENT}::churn"), resource.name
    props = inputs(pulumi_mocks)
    assert outputs["endpoint_name"] == "churn"
    assert outputs["endpoint_config_name"] == desired(props).config_name
    assert outputs["variant_weights"] == {"main": 100}
    assert outputs["role_arn"] == f"arn:aws:iam::{stacks.ACCOUNT}:role/churn-execution"
    assert outputs["capture_s3_uri"] == f"{stacks.CAPTURE}/churn"
    deployment = pulumi_mocks.by_name["churn"]
    alarm_urns = [a for a in deployment.dependencies if "MetricAlarm" in a]
    assert len(alarm_urns) == 5, "the endpoint must not roll out before its rollback alarms"


def test_one_variant_model_and_configuration_requests(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.one_variant())
    props = inputs(pulumi_mocks)
    assert props["models"]["main"] == {
        "PrimaryContainer": {
            "Image": stacks.IMAGE,
            "ModelDataUrl": "s3://ml-models/churn/v1/model.tar.gz",
            "Environment": {
                "MODEL_NAME": "churn",
                "MODEL_VERSION": "v1",
                "ML_ENDPOINTS_VARIANT": "main",
                "ML_ENDPOINTS_SAGEMAKER_ENDPOINT": "churn",
                "ML_ENDPOINTS_SIGNALS_NAMESPACE": "ml-endpoints",
            },
        },
        "ExecutionRoleArn": f"arn:aws:iam::{stacks.ACCOUNT}:role/churn-execution",
        "EnableNetworkIsolation": False,
    }
    assert props["config"]["ProductionVariants"] == [
        {"VariantName": "main", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    ]
    assert props["weights"] == {"main": 100}
    assert props["config"]["DataCaptureConfig"] == {
        "EnableCapture": True,
        "DestinationS3Uri": stacks.CAPTURE,
        "InitialSamplingPercentage": 100,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": ["application/json"],
            "CsvContentTypes": ["text/csv"],
        },
    }
    assert props["endpoint_name"] == "churn"
    assert props["region"] == "us-east-1"


def test_two_weighted_variants_autoscaling_and_guardrails(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.two_variants(), with_repository=True)
    props = inputs(pulumi_mocks)
    assert outputs["variant_weights"] == {"blue": 75, "green": 25}
    assert props["weights"] == {"blue": 75, "green": 25}
    url = f"{stacks.ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{stacks.REPOSITORY}"
    images = {v: m["PrimaryContainer"]["Image"] for v, m in props["models"].items()}
    assert images == {"blue": f"{url}:v1.2.0", "green": f"{url}:v1.3.0"}
    assert props["autoscaling"]["green"] == {
        "min_instances": 2,
        "max_instances": 3,
        "target_invocations_per_instance": 100,
        "scale_in_cooldown_s": 600,
        "scale_out_cooldown_s": 30,
        "disable_scale_in": False,
    }
    alarms = sorted(  # by default SageMaker's own metrics roll back, not the container's
        a.inputs["name"]
        for a in pulumi_mocks.of_type(ALARM)
        if a.inputs.get("namespace") == "AWS/SageMaker"
    )
    assert props["deployment"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 900,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
            "TerminationWaitInSeconds": 0,
            # two shifts (canary, then the rest) x 900 s + the 600 s margin
            "MaximumExecutionTimeoutInSeconds": 2400,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": n} for n in alarms]},
    }
    assert statements(pulumi_mocks)["WatchRollbackAlarms"]["Resource"] == [
        f"arn:aws:cloudwatch:us-east-1:{stacks.ACCOUNT}:alarm:{n}" for n in alarms
    ]


def test_rollouts_longer_than_an_hour_are_waited_for(pulumi_mocks: RecordingMocks) -> None:
    """Item 4: pulumi-aws's waitEndpointInService stops after a hard-coded 60 minutes
    (internal/service/sagemaker/endpoint.go) whatever ``custom_timeouts`` say; the provider's
    wait comes from the rollout."""
    slow = stacks.changed(
        stacks.one_variant(),
        "deployment",
        value={"strategy": "linear", "step": {"value": 50}, "wait_interval_s": 3600},
    )
    slow["variants"][0]["instance_count"] = 2
    deploy(slow)
    props = inputs(pulumi_mocks)
    policy = props["deployment"]["BlueGreenUpdatePolicy"]
    assert policy["MaximumExecutionTimeoutInSeconds"] == 2 * 3600 + 600
    # create: 20 min provisioning + 10 min margin; update: + the rollout and its rollback
    assert props["timeouts"] == {"create": 1800, "update": 1800 + 2 * 7800, "delete": 1200}
    assert props["timeouts"]["update"] > 3600


def test_auto_rollback_can_be_turned_off(pulumi_mocks: RecordingMocks) -> None:
    deploy(stacks.changed(stacks.one_variant(), "deployment", value={"auto_rollback": False}))
    assert "AutoRollbackConfiguration" not in inputs(pulumi_mocks)["deployment"]
    assert len(pulumi_mocks.of_type(ALARM)) == 5  # still there, for paging
    assert "WatchRollbackAlarms" not in statements(pulumi_mocks)


def test_serverless(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.serverless())
    config = inputs(pulumi_mocks)["config"]
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 20}
    assert "InstanceType" not in variant
    assert "DataCaptureConfig" not in config
    assert inputs(pulumi_mocks)["autoscaling"] == {}
    assert outputs["capture_s3_uri"] is None
    assert "WriteCapturedData" not in statements(pulumi_mocks)


def test_shadow_variant(pulumi_mocks: RecordingMocks) -> None:
    outputs = deploy(stacks.shadow())
    props = inputs(pulumi_mocks)
    assert [v["VariantName"] for v in props["config"]["ProductionVariants"]] == ["main"]
    (shadow,) = props["config"]["ShadowProductionVariants"]
    assert (shadow["VariantName"], shadow["InstanceType"]) == ("candidate", "ml.m5.xlarge")
    assert props["models"]["candidate"]["PrimaryContainer"]["ModelDataUrl"] == (
        "s3://ml-models/churn/v2/model.tar.gz"
    )
    plan = desired(props)
    (named,) = plan.config["ShadowProductionVariants"]
    assert named["ModelName"] == plan.model_names["candidate"]
    assert outputs["variant_weights"] == {"main": 100}
    names = [a.inputs["name"] for a in pulumi_mocks.of_type(ALARM)]
    assert len(names) == 5
    assert all(n.startswith("churn-main-") for n in names)  # the shadow answers nobody


def _declared(mocks: RecordingMocks, config: dict[str, Any]) -> dict[str, Any]:
    mocks.resources.clear()
    deploy(config, with_repository=True)
    return dict(inputs(mocks))


def test_weights_are_not_part_of_the_configuration_name(pulumi_mocks: RecordingMocks) -> None:
    """Item 3: moving traffic keeps the configuration (and so needs no new fleet); a release
    gets a new configuration with the same variant names."""
    before = stacks.two_variants()
    old = desired(_declared(pulumi_mocks, before))
    moved = stacks.changed(
        stacks.changed(before, "variants", 0, "weight", value=60), "variants", 1, "weight", value=40
    )
    assert desired(_declared(pulumi_mocks, moved)).config_name == old.config_name
    release = stacks.changed(before, "variants", 1, "model", "image_tag", value="v1.4.0")
    new = desired(_declared(pulumi_mocks, release))
    assert new.config_name != old.config_name
    assert new.model_names["blue"] == old.model_names["blue"]
    assert new.model_names["green"] != old.model_names["green"]
    assert [v["VariantName"] for v in new.config["ProductionVariants"]] == ["blue", "green"]


ROUTINE_CHANGES = {
    "auto-rollback-off": lambda c: stacks.changed(c, "deployment", "auto_rollback", value=False),
    "rollback-on-container-signals": lambda c: stacks.changed(
        c, "alarms", value={"rollback_on": ["container_5xx", "drift"]}
    ),
    "alarm-threshold": lambda c: stacks.changed(
        c, "alarms", value={"model_latency": {"threshold": 250}}
    ),
    "remove-variant": lambda c: {
        **c,
        "variants": [{**c["variants"][0], "weight": 100}],
        "deployment": {"strategy": "all_at_once"},
    },
    "rename-variant": lambda c: stacks.changed(c, "variants", 1, "name", value="teal"),
    "weights": lambda c: stacks.changed(
        stacks.changed(c, "variants", 0, "weight", value=90), "variants", 1, "weight", value=10
    ),
}


@pytest.mark.parametrize("change", sorted(ROUTINE_CHANGES))
def test_routine_changes_never_replace_the_endpoint(
    pulumi_mocks: RecordingMocks, change: str
) -> None:
    """Item 1: with pulumi-aws, ``deployment_config.auto_rollback_configuration`` is ForceNew
    (internal/service/sagemaker/endpoint.go) and the alarm list follows the variants, so these
    changes replaced an endpoint with a fixed name ("Cannot create already existing endpoint").
    The endpoint's resource is now one whose provider replaces it only for a new name."""
    before = stacks.two_variants()
    olds = _declared(pulumi_mocks, before)
    news = _declared(pulumi_mocks, ROUTINE_CHANGES[change](before))
    verdict = SageMakerEndpointProvider().diff("churn", olds, news)
    assert verdict.replaces == []
    # alarm settings change the alarms, not the endpoint
    assert verdict.changes is (change != "alarm-threshold")


def test_production_protects_the_endpoint(pulumi_mocks: RecordingMocks) -> None:
    """Item 8: a production endpoint carries ``protect``: Pulumi refuses to delete or replace
    it (only a rename would replace it)."""
    deploy({**stacks.one_variant(), "protect": True})
    assert pulumi_mocks.by_name["churn"].protect is True
    assert all(not pulumi_mocks.by_name[a.name].protect for a in pulumi_mocks.of_type(ALARM))


@pytest.mark.parametrize(
    ("settings", "kept"),
    [
        ({}, False),
        ({"protect": True}, True),
        ({"protect": True, "recreate_failed_endpoint": True}, False),
        ({"recreate_failed_endpoint": False}, True),
    ],
)
def test_production_keeps_a_failed_endpoint_unless_told(
    pulumi_mocks: RecordingMocks, settings: dict[str, Any], kept: bool
) -> None:
    """Production (``protect``) hands the provider ``failed_endpoint: keep``: a ``Failed``
    endpoint is not deleted and recreated by ``pulumi up`` (test_endpoint_provider), unless the
    stack says ``recreate_failed_endpoint: true``. Elsewhere the input is absent, so the plans
    and states of other stacks do not change."""
    deploy({**stacks.one_variant(), **settings})
    assert inputs(pulumi_mocks).get("failed_endpoint") == ("keep" if kept else None)


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
    # the container's metrics are EMF lines in its log stream: no cloudwatch:PutMetricData
    assert not any("cloudwatch:PutMetricData" in s["Action"] for s in grants.values())
    star = sorted(sid for sid, s in grants.items() if s["Resource"] == "*")
    assert star == ["EcrLogin"]  # no resource-level permissions exist
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

    config_request = inputs(pulumi_mocks)["config"]
    assert config_request["KmsKeyId"] == stacks.KMS_KEY
    assert config_request["DataCaptureConfig"]["KmsKeyId"] == capture_key
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

    model = inputs(pulumi_mocks)["models"]["main"]
    assert model["VpcConfig"] == {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
    assert model["EnableNetworkIsolation"] is True
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


def _alarm_metrics(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) an alarm's inputs read."""
    queries = [q["metric"] for q in alarm.get("metricQueries") or [] if q.get("metric")]
    found = [(m["namespace"], m["metricName"], m["dimensions"]) for m in queries]
    if alarm.get("metricName"):
        found.append((alarm["namespace"], alarm["metricName"], alarm["dimensions"]))
    return found


def test_the_container_signals_reach_their_alarms(pulumi_mocks: RecordingMocks) -> None:
    """Issue 18 item 3. The container writes its EMF lines with the namespace and the
    ``EndpointName``/``VariantName`` dimensions it reads from its environment
    (serving/contract.py: SAGEMAKER_ENDPOINT_ENV, SIGNALS_NAMESPACE_ENV, VARIANT_ENV); SageMaker
    sets no variable naming the endpoint, so the component must. Every signal alarm of a
    variant reads exactly the namespace and dimensions that variant's container is given."""
    config = {**stacks.two_variants(), "metrics_namespace": "churn-signals"}
    deploy(config, with_repository=True)
    environments = {
        variant: model["PrimaryContainer"]["Environment"]
        for variant, model in inputs(pulumi_mocks)["models"].items()
    }
    signal_alarms = [
        a.inputs
        for a in pulumi_mocks.of_type(ALARM)
        if a.inputs.get("namespace") != "AWS/SageMaker"
    ]
    assert len(signal_alarms) == 6  # container 5xx, latency and drift per variant
    for alarm in signal_alarms:
        for namespace, _, dimensions in _alarm_metrics(alarm):
            env = environments[dimensions["VariantName"]]
            assert namespace == env["ML_ENDPOINTS_SIGNALS_NAMESPACE"] == "churn-signals"
            assert dimensions["EndpointName"] == env["ML_ENDPOINTS_SAGEMAKER_ENDPOINT"] == "churn"
            assert dimensions["VariantName"] == env["ML_ENDPOINTS_VARIANT"]


def test_the_stack_chooses_which_signals_roll_back(pulumi_mocks: RecordingMocks) -> None:
    """Issue 18 item 3: ``alarms.rollback_on`` picks the alarms SageMaker watches during a
    blue/green update (AutoRollbackConfig.Alarms, listed per variant in one order whatever the
    order in the stack file, so reordering changes nothing); the execution role may describe
    exactly those (deployment-guardrails-configuration.html), and the other alarms still exist
    for paging."""
    config = stacks.changed(
        stacks.two_variants(),
        "alarms",
        value={
            "rollback_on": ["drift", "invocation_5xx_errors", "container_5xx"],
            "signals": {"container_latency": None},
        },
    )
    deploy(config, with_repository=True)
    rollback = [
        a["AlarmName"]
        for a in inputs(pulumi_mocks)["deployment"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert rollback == [
        f"churn-{variant}-{signal}"
        for variant in ("blue", "green")
        for signal in ("invocation-5xx-errors", "container-5xx", "drift")
    ]
    declared = sorted(a.inputs["name"] for a in pulumi_mocks.of_type(ALARM))
    assert declared == sorted(
        f"churn-{variant}-{signal}"
        for variant in ("blue", "green")
        for signal in ("invocation-5xx-errors", "model-latency", "container-5xx", "drift")
    )
    assert statements(pulumi_mocks)["WatchRollbackAlarms"]["Resource"] == sorted(
        f"arn:aws:cloudwatch:us-east-1:{stacks.ACCOUNT}:alarm:{name}" for name in rollback
    )
