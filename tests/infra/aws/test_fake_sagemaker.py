"""The SageMaker fake against the real boto3 client: each behaviour is what the API reference
(botocore's ``sagemaker/service-2.json`` documentation, the same text as
docs.aws.amazon.com/sagemaker/latest/APIReference) or a provider issue reports, cited per test.

Application Auto Scaling is moto's (``moto_server``); the fake asks it, as SageMaker asks the
service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.infra.aws.fake_sagemaker import SCALABLE_DIMENSION, FakeSageMaker, Script

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1.0.0"
ROLE = "arn:aws:iam::123456789012:role/execution"


def variant(
    name: str, model: str, *, weight: float = 1.0, count: int = 2, kind: str = "ml.m5.large"
) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InitialVariantWeight": weight,
        "InitialInstanceCount": count,
        "InstanceType": kind,
    }


def setup_endpoint(
    sm: Any, fake: FakeSageMaker, *variants: dict[str, Any], name: str = "churn"
) -> None:
    """Models for the variants, config ``NAME-1``, endpoint ``NAME`` InService."""
    for spec in variants:
        if spec["ModelName"] not in fake.models:
            sm.create_model(
                ModelName=spec["ModelName"],
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://m/a.tar.gz"},
                ExecutionRoleArn=ROLE,
            )
    sm.create_endpoint_config(EndpointConfigName=f"{name}-1", ProductionVariants=list(variants))
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-1")
    assert fake.settle(name)["EndpointStatus"] == "InService"


def new_config(sm: Any, fake: FakeSageMaker, config: str, *variants: dict[str, Any]) -> None:
    for spec in variants:
        if spec["ModelName"] not in fake.models:
            sm.create_model(
                ModelName=spec["ModelName"],
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://m/b.tar.gz"},
                ExecutionRoleArn=ROLE,
            )
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=list(variants))


def update(sm: Any, fake: FakeSageMaker, config: str, **options: Any) -> dict[str, dict[str, Any]]:
    """UpdateEndpoint of ``churn`` to ``config``, waited out; the live variants by name."""
    sm.update_endpoint(EndpointName="churn", EndpointConfigName=config, **options)
    fake.settle("churn")
    return live(sm)


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def live(sm: Any, name: str = "churn") -> dict[str, dict[str, Any]]:
    return {
        v["VariantName"]: v for v in sm.describe_endpoint(EndpointName=name)["ProductionVariants"]
    }


def register(autoscaling: Callable[[], Any], variant_name: str, name: str = "churn") -> None:
    autoscaling().register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=f"endpoint/{name}/variant/{variant_name}",
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=1,
        MaxCapacity=8,
    )


def test_create_goes_creating_then_in_service(sm: Any, fake: FakeSageMaker) -> None:
    """CreateEndpoint: "the endpoint status is Creating. After it creates the endpoint, it sets
    the status to InService"; variants start at their configuration's initial values."""
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant("a", "m1")])
    fake.script("create", Script(steps=2))
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="c1")
    statuses = [sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] for _ in range(4)]
    assert statuses == ["Creating", "Creating", "InService", "InService"]
    described = sm.describe_endpoint(EndpointName="churn")
    assert described["EndpointConfigName"] == "c1"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert described["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IMAGE


def test_an_existing_endpoint_cannot_be_created_again(sm: Any, fake: FakeSageMaker) -> None:
    """hashicorp/terraform-provider-aws#40080 quotes SageMaker's answer to a create-before-delete
    replacement of an endpoint with a fixed name: ``ValidationException: Cannot create already
    existing endpoint "arn:..."``."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    code, message = error_of(
        lambda: sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-1")
    )
    assert code == "ValidationException"
    assert message == (
        'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:123456789012:'
        'endpoint/churn".'
    )


def test_unknown_names_are_validation_errors(sm: Any) -> None:
    """The provider recognises a missing endpoint by ``ValidationException`` containing
    "Could not find endpoint" (internal/service/sagemaker/endpoint.go ``findEndpoint``), and a
    missing configuration by "Could not find endpoint configuration"
    (endpoint_configuration.go)."""
    code, message = error_of(lambda: sm.describe_endpoint(EndpointName="nope"))
    assert (code, message.startswith("Could not find endpoint ")) == ("ValidationException", True)
    code, message = error_of(lambda: sm.describe_endpoint_config(EndpointConfigName="nope"))
    assert message.startswith("Could not find endpoint configuration ")
    code, message = error_of(lambda: sm.describe_model(ModelName="nope"))
    assert message.startswith("Could not find model ")


def test_update_deploys_the_pending_configuration_then_switches(
    sm: Any, fake: FakeSageMaker
) -> None:
    """UpdateEndpoint sets ``Updating``, then ``InService``; DescribeEndpoint's
    PendingDeploymentSummary is "only returned when the endpoint is creating or updating with a
    new endpoint configuration"; LastDeploymentConfig is "the most recent deployment
    configuration"."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
        }
    }
    fake.script("update", Script(steps=1))
    sm.update_endpoint(
        EndpointName="churn", EndpointConfigName="churn-2", DeploymentConfig=deployment
    )
    during = sm.describe_endpoint(EndpointName="churn")
    assert during["EndpointStatus"] == "Updating"
    assert during["EndpointConfigName"] == "churn-1"
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == "churn-2"
    after = fake.settle("churn")
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == "churn-2"
    assert "PendingDeploymentSummary" not in after
    assert after["LastDeploymentConfig"] == deployment


def test_an_endpoint_being_updated_cannot_be_updated(sm: Any, fake: FakeSageMaker) -> None:
    """The API reference only promises the ``Updating`` status until the update is done; an
    update or a weight change requested meanwhile is refused."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    fake.script("update", Script(outcome="stall"))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    code, message = error_of(
        lambda: sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-1")
    )
    assert code == "ValidationException"
    assert message.startswith("Cannot update in-progress endpoint")
    code, _ = error_of(
        lambda: sm.update_endpoint_weights_and_capacities(
            EndpointName="churn",
            DesiredWeightsAndCapacities=[{"VariantName": "a", "DesiredWeight": 2}],
        )
    )
    assert code == "ValidationException"
    with pytest.raises(AssertionError, match="still Updating"):
        fake.settle("churn", limit=20)


def test_a_rollback_ends_in_service_on_the_old_configuration_with_a_reason(
    sm: Any, fake: FakeSageMaker
) -> None:
    """A blue/green update SageMaker rolls back passes ``RollingBack`` ("Once the rollback
    completes, endpoint returns to an InService status") and ends **InService on the previous
    configuration** with a FailureReason: hashicorp/terraform-provider-aws#48997 and #46663 (the
    provider's wait returns success there), aws-controllers-k8s/sagemaker-controller#7 ("If an
    update fails, the endpoint goes back to InService state with a FailureReason")."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    fake.script(
        "update", Script(outcome="roll_back", steps=1, rollback_steps=1, reason="alarm fired")
    )
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    statuses = [sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] for _ in range(4)]
    assert statuses == ["Updating", "RollingBack", "RollingBack", "InService"]
    after = sm.describe_endpoint(EndpointName="churn")
    assert after["EndpointConfigName"] == "churn-1"
    assert after["FailureReason"] == "alarm fired"
    assert "PendingDeploymentSummary" not in after


def test_a_rollback_may_leave_no_failure_reason(sm: Any, fake: FakeSageMaker) -> None:
    """hashicorp/terraform-provider-aws PR #49020: after a rollback "the endpoint returns to
    InService with its previous configuration, and the FailureReason may become empty" — only
    the configuration name tells."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    fake.script("update", Script(outcome="roll_back", reason=None))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    after = fake.settle("churn")
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "churn-1")
    assert "FailureReason" not in after


def test_a_failed_create_ends_failed_with_the_reason(sm: Any, fake: FakeSageMaker) -> None:
    """DescribeEndpoint FailureReason: "If the status of the endpoint is Failed, the reason why
    it failed"."""
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant("a", "m1")])
    fake.script("create", Script(outcome="fail", reason="image not found"))
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="c1")
    after = fake.settle("churn")
    assert (after["EndpointStatus"], after["FailureReason"]) == ("Failed", "image not found")


def test_an_update_resets_counts_unless_told_to_retain(sm: Any, fake: FakeSageMaker) -> None:
    """UpdateEndpoint RetainAllVariantProperties: "To use the variant properties specified in a
    new EndpointConfig call when updating an endpoint, set RetainAllVariantProperties to false.
    The default is false." What autoscaling chose (here 5 instances) is lost."""
    setup_endpoint(sm, fake, variant("a", "m1", count=2))
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[{"VariantName": "a", "DesiredInstanceCount": 5}],
    )
    fake.settle("churn")
    assert live(sm)["a"]["CurrentInstanceCount"] == 5
    new_config(sm, fake, "churn-2", variant("a", "m2", count=2))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    fake.settle("churn")
    assert live(sm)["a"]["CurrentInstanceCount"] == 2


def test_retained_properties_and_exclusions(sm: Any, fake: FakeSageMaker) -> None:
    """RetainAllVariantProperties=true keeps "the instance count or the variant weight";
    ExcludeRetainedVariantProperties names the VariantProperty types (``DesiredWeight``:
    "Overrides the existing variant weights using the InitialVariantWeight values") taken from
    the new configuration. A variant new to the endpoint starts from its configuration."""
    setup_endpoint(
        sm, fake, variant("a", "m1", count=2, weight=1), variant("b", "m1", count=2, weight=1)
    )
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[
            {"VariantName": "a", "DesiredInstanceCount": 5, "DesiredWeight": 3}
        ],
    )
    fake.settle("churn")
    new_config(
        sm,
        fake,
        "churn-2",
        variant("a", "m2", count=2, weight=9),
        variant("c", "m2", count=3, weight=1),
    )
    variants = update(
        sm,
        fake,
        "churn-2",
        RetainAllVariantProperties=True,
        ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}],
    )
    assert sorted(variants) == ["a", "c"]
    assert (variants["a"]["CurrentInstanceCount"], variants["a"]["CurrentWeight"]) == (5, 9.0)
    assert (variants["c"]["CurrentInstanceCount"], variants["c"]["CurrentWeight"]) == (3, 1.0)

    new_config(
        sm,
        fake,
        "churn-3",
        variant("a", "m1", count=2, weight=1),
        variant("c", "m1", count=1, weight=7),
    )
    variants = update(sm, fake, "churn-3", RetainAllVariantProperties=True)
    assert (variants["a"]["CurrentInstanceCount"], variants["a"]["CurrentWeight"]) == (5, 9.0)
    assert (variants["c"]["CurrentInstanceCount"], variants["c"]["CurrentWeight"]) == (3, 1.0)


def test_weights_change_in_place(sm: Any, fake: FakeSageMaker) -> None:
    """UpdateEndpointWeightsAndCapacities "Updates variant weight of one or more variants …
    sets the endpoint status to Updating. After updating the endpoint, it sets the status to
    InService": same configuration, same fleet. Unknown or repeated variant names are refused
    with moto's wording (moto/sagemaker/models.py)."""
    setup_endpoint(sm, fake, variant("a", "m1", weight=1), variant("b", "m1", weight=0))
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[
            {"VariantName": "a", "DesiredWeight": 90},
            {"VariantName": "b", "DesiredWeight": 10},
        ],
    )
    assert sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Updating"
    after = fake.settle("churn")
    assert after["EndpointConfigName"] == "churn-1"
    assert {v["VariantName"]: v["CurrentWeight"] for v in after["ProductionVariants"]} == {
        "a": 90.0,
        "b": 10.0,
    }
    assert {v["CurrentInstanceCount"] for v in after["ProductionVariants"]} == {2}
    _, message = error_of(
        lambda: sm.update_endpoint_weights_and_capacities(
            EndpointName="churn",
            DesiredWeightsAndCapacities=[{"VariantName": "zz", "DesiredWeight": 1}],
        )
    )
    assert (
        message
        == 'The variant name(s) "zz" is/are not present within endpoint configuration "churn-1".'
    )


def test_deleting_a_live_configuration_is_accepted_and_breaks_the_next_update(
    sm: Any, fake: FakeSageMaker
) -> None:
    """DeleteEndpointConfig documents no error for a configuration in use ("You must not delete
    an EndpointConfig in use by an endpoint that is live …"); the endpoint then refers to nothing
    and the next update fails with "Could not find endpoint configuration" (hashicorp/
    terraform-provider-aws#40048, #48997, PR #49020)."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    sm.delete_endpoint_config(EndpointConfigName="churn-1")
    assert sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "InService"
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    code, message = error_of(
        lambda: sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    )
    assert code == "ValidationException"
    assert message == (
        'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:123456789012:'
        'endpoint-config/churn-1".'
    )


def test_an_update_may_not_drop_an_autoscaled_variant(
    sm: Any, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """docs …/sagemaker/latest/dg/endpoint-scaling-update.html: Application Auto Scaling checks
    an update against the variants registered as scalable targets and the call fails; the
    procedure is DeregisterScalableTarget, UpdateEndpoint, register again. (Dropping a registered
    variant fails like changing its instance type; the wording is this fake's.)"""
    setup_endpoint(sm, fake, variant("a", "m1"), variant("b", "m1"))
    register(autoscaling, "b")
    new_config(sm, fake, "churn-2", variant("a", "m2"))
    code, message = error_of(
        lambda: sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    )
    assert code == "ValidationException"
    assert "['b']" in message
    assert "Application Auto Scaling" in message
    autoscaling().deregister_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/churn/variant/b",
        ScalableDimension=SCALABLE_DIMENSION,
    )
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    assert fake.settle("churn")["EndpointConfigName"] == "churn-2"


def test_an_autoscaled_variant_may_change_its_model_but_not_its_instance_type(
    sm: Any, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """endpoint-scaling-update.html: "If the update would change the instance type for any model
    that is a target for auto scaling, the update fails … There is one exception. If you change
    the model for a variant that is configured for auto scaling, … auto scaling allows the
    update.\""""
    setup_endpoint(sm, fake, variant("a", "m1", kind="ml.m5.large"))
    register(autoscaling, "a")
    new_config(sm, fake, "churn-2", variant("a", "m2", kind="ml.c5.xlarge"))
    code, _ = error_of(
        lambda: sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-2")
    )
    assert code == "ValidationException"
    new_config(sm, fake, "churn-3", variant("a", "m2", kind="ml.m5.large"))
    sm.update_endpoint(EndpointName="churn", EndpointConfigName="churn-3")
    assert fake.settle("churn")["EndpointConfigName"] == "churn-3"


def test_deleting_an_endpoint_deregisters_its_variants(
    sm: Any, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """endpoint-scaling.html "Delete endpoints configured for auto scaling": "Application Auto
    Scaling deregisters those variants as scalable targets without notifying you"."""
    setup_endpoint(sm, fake, variant("a", "m1"))
    register(autoscaling, "a")
    sm.delete_endpoint(EndpointName="churn")
    assert sm.describe_endpoint(EndpointName="churn")["EndpointStatus"] == "Deleting"
    code, _ = error_of(lambda: sm.describe_endpoint(EndpointName="churn"))
    assert code == "ValidationException"
    targets = autoscaling().describe_scalable_targets(ServiceNamespace="sagemaker")[
        "ScalableTargets"
    ]
    assert targets == []


@pytest.mark.parametrize(
    ("count", "size", "accepted"),
    [
        (1, {"Type": "CAPACITY_PERCENT", "Value": 10}, False),
        (2, {"Type": "CAPACITY_PERCENT", "Value": 10}, True),
        (2, {"Type": "INSTANCE_COUNT", "Value": 1}, True),
        (3, {"Type": "INSTANCE_COUNT", "Value": 2}, False),
        (4, {"Type": "CAPACITY_PERCENT", "Value": 60}, False),
    ],
)
def test_a_canary_is_at_least_one_instance_and_at_most_half_the_fleet(
    sm: Any, fake: FakeSageMaker, count: int, size: dict[str, Any], accepted: bool
) -> None:
    """TrafficRoutingConfig.CanarySize: "Value must be less than or equal to 50% of the
    variant's total instance count"; traffic moves to whole instances, so a canary is at least
    one — a one-instance fleet cannot run a canary."""
    setup_endpoint(sm, fake, variant("a", "m1", count=count))
    new_config(sm, fake, "churn-2", variant("a", "m2", count=count))
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 60,
                "CanarySize": size,
            }
        }
    }

    def update() -> Any:
        return sm.update_endpoint(
            EndpointName="churn", EndpointConfigName="churn-2", DeploymentConfig=deployment
        )

    if accepted:
        update()
    else:
        code, message = error_of(update)
        assert code == "ValidationException"
        assert "50%" in message


@pytest.mark.parametrize(
    ("timeout", "accepted"), [(600, True), (28800, True), (28801, False), (700, False)]
)
def test_execution_timeout_limits(
    sm: Any, fake: FakeSageMaker, timeout: int, accepted: bool
) -> None:
    """BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28800 in the API model, and it
    "should be larger than the total waiting time" (here 2 x 300 s + 120 s = 720 s)."""
    setup_endpoint(sm, fake, variant("a", "m1", count=2))
    new_config(sm, fake, "churn-2", variant("a", "m2", count=2))
    policy = {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 300,
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
        },
        "TerminationWaitInSeconds": 120,
        "MaximumExecutionTimeoutInSeconds": timeout,
    }

    def update() -> Any:
        return sm.update_endpoint(
            EndpointName="churn",
            EndpointConfigName="churn-2",
            DeploymentConfig={"BlueGreenUpdatePolicy": policy},
        )

    if accepted and timeout > 720:
        update()
    else:
        assert error_of(update)[0] == "ValidationException"


def test_configurations_and_models_are_listed_by_name_and_tagged(
    sm: Any, fake: FakeSageMaker
) -> None:
    """ListEndpointConfigs/ListModels filter with NameContains; CreateModel/CreateEndpointConfig
    take Tags that ListTags returns."""
    tags = [{"Key": "ml-endpoints:endpoint", "Value": "churn"}]
    arn = sm.create_model(
        ModelName="churn-a-1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE, Tags=tags
    )["ModelArn"]
    sm.create_model(ModelName="other-a-1", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    assert [m["ModelName"] for m in sm.list_models(NameContains="churn")["Models"]] == ["churn-a-1"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags
    sm.create_endpoint_config(
        EndpointConfigName="churn-x", ProductionVariants=[variant("a", "churn-a-1")], Tags=tags
    )
    assert [
        c["EndpointConfigName"]
        for c in sm.list_endpoint_configs(NameContains="churn")["EndpointConfigs"]
    ] == ["churn-x"]
    _code, message = error_of(
        lambda: sm.create_endpoint_config(
            EndpointConfigName="churn-y", ProductionVariants=[variant("a", "missing")]
        )
    )
    assert message.startswith("Could not find model ")
