"""The endpoint's dynamic provider against the SageMaker fake and moto's Application Auto Scaling,
through real boto3 clients (``AWS_ENDPOINT_URL_SAGEMAKER`` / ``AWS_ENDPOINT_URL``).

Each test names the behaviour of pulumi-aws (hashicorp/terraform-provider-aws
``internal/service/sagemaker/endpoint.go``) it replaces, and the API page the behaviour rests on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra.aws import endpoint_provider
from infra.aws.endpoint_provider import (
    OWNER_TAG,
    EndpointDeploymentError,
    EndpointRolledBack,
    EndpointStillBusy,
    SageMakerEndpointProvider,
    desired,
)
from infra.aws.garbage import find_garbage
from tests.infra.aws.conftest import REGION
from tests.infra.aws.fake_sagemaker import FakeSageMaker, Script

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1.0.0"
ROLE = "arn:aws:iam::123456789012:role/churn-execution"
HOUR = 3600


class Interrupted(BaseException):
    """The ``pulumi up`` process dies (Ctrl-C twice, a killed CI job): no cleanup runs."""


class FakeClock(endpoint_provider.Clock):
    """Simulated time: sleeping only moves the clock; ``interrupt_after`` sleeps, the process
    "dies" (:class:`Interrupted`, which no ``except Exception`` catches)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.interrupt_after: int | None = None

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if self.interrupt_after is not None:
            if self.interrupt_after == 0:
                self.interrupt_after = None
                raise Interrupted
            self.interrupt_after -= 1
        self.t += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake_clock = FakeClock()
    monkeypatch.setattr(endpoint_provider, "CLOCK", fake_clock)
    return fake_clock


@pytest.fixture
def provider(
    fake: FakeSageMaker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> SageMakerEndpointProvider:
    """The provider, its boto3 SageMaker client sent to the fake (Auto Scaling to moto)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
    return SageMakerEndpointProvider()


def model(version: str) -> dict[str, Any]:
    return {
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": f"s3://ml-models/churn/{version}/model.tar.gz",
            "Environment": {"MODEL_VERSION": version},
        },
        "ExecutionRoleArn": ROLE,
        "EnableNetworkIsolation": False,
    }


def variant(name: str, *, count: int = 2, kind: str = "ml.m5.large") -> dict[str, Any]:
    return {"VariantName": name, "InstanceType": kind, "InitialInstanceCount": count}


def scaling(low: int = 2, high: int = 8) -> dict[str, Any]:
    return {
        "min_instances": low,
        "max_instances": high,
        "target_invocations_per_instance": 600.0,
        "scale_in_cooldown_s": 300,
        "scale_out_cooldown_s": 60,
        "disable_scale_in": False,
    }


def deployment(
    *, rollback: bool = True, alarms: tuple[str, ...] = ("churn-5xx",)
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 600,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 1800,
        }
    }
    if rollback:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def props(**overrides: Any) -> dict[str, Any]:
    """Two variants (champion 100, challenger 0), champion autoscaled, a canary deployment."""
    base: dict[str, Any] = {
        "endpoint_name": "churn",
        "region": REGION,
        "profile": None,
        "models": {"champion": model("v1"), "challenger": model("v2")},
        "config": {"ProductionVariants": [variant("champion"), variant("challenger")]},
        "weights": {"champion": 100.0, "challenger": 0.0},
        "deployment": deployment(),
        "autoscaling": {"champion": scaling()},
        "tags": {"team": "ml"},
        "timeouts": {"create": HOUR, "update": 3 * HOUR, "delete": HOUR},
        "poll_seconds": 30.0,
    }
    base.update(copy.deepcopy(overrides))
    return base


def targets(autoscaling: Callable[[], Any]) -> dict[str, tuple[int, int]]:
    found = autoscaling().describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    return {t["ResourceId"]: (t["MinCapacity"], t["MaxCapacity"]) for t in found}


def live(fake: FakeSageMaker) -> dict[str, Any]:
    return fake.settle("churn")


def counts(fake: FakeSageMaker) -> dict[str, int]:
    return {v["VariantName"]: v["CurrentInstanceCount"] for v in live(fake)["ProductionVariants"]}


def writes(fake: FakeSageMaker) -> list[str]:
    """The SageMaker calls that change something."""
    return [op for op in fake.operations() if not op.startswith(("Describe", "List"))]


def test_create_builds_models_configuration_endpoint_and_autoscaling(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """Creation: CreateModel per variant, one CreateEndpointConfig carrying the weights,
    CreateEndpoint with the deployment configuration, then RegisterScalableTarget and
    PutScalingPolicy (endpoint-auto-scaling-add-policy.html) once the endpoint is InService."""
    created = provider.create(props())
    plan = desired(props())
    assert created.id == "churn"
    assert created.outs["endpoint_config_name"] == plan.config_name
    assert created.outs["live_weights"] == {"champion": 100.0, "challenger": 0.0}
    assert writes(fake) == ["CreateModel", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    (request,) = fake.requests("CreateEndpointConfig")
    assert [v["InitialVariantWeight"] for v in request["ProductionVariants"]] == [100, 0]
    assert {"Key": OWNER_TAG, "Value": "churn"} in request["Tags"]
    assert fake.requests("CreateEndpoint")[0]["DeploymentConfig"] == deployment()
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}
    policies = autoscaling().describe_scaling_policies(ServiceNamespace="sagemaker")
    assert [p["PolicyName"] for p in policies["ScalingPolicies"]] == [
        "champion-invocations-per-instance"
    ]


def test_a_weight_only_change_shifts_traffic_in_place(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """Item 3. pulumi-aws marks ``initial_variant_weight`` ForceNew (endpoint_configuration.go),
    so 0 -> 10 % meant a new configuration and a blue/green deployment to a second fleet.
    UpdateEndpointWeightsAndCapacities changes weights in place; the configuration's name does
    not contain the weights."""
    before = provider.create(props())
    fake.calls.clear()
    moved = props(weights={"champion": 90.0, "challenger": 10.0})
    assert provider.diff("churn", before.outs, moved).replaces == []
    after = provider.update("churn", before.outs, moved)
    assert writes(fake) == ["UpdateEndpointWeightsAndCapacities"]
    assert fake.requests("UpdateEndpointWeightsAndCapacities")[0][
        "DesiredWeightsAndCapacities"
    ] == [
        {"VariantName": "challenger", "DesiredWeight": 10},
        {"VariantName": "champion", "DesiredWeight": 90},
    ]
    assert after.outs["endpoint_config_name"] == before.outs["endpoint_config_name"]
    assert after.outs["live_weights"] == {"champion": 90.0, "challenger": 10.0}
    assert desired(moved).config_name == desired(props()).config_name


def test_a_release_keeps_the_capacity_autoscaling_chose(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, sm: Any
) -> None:
    """Item 4. pulumi-aws's resourceEndpointUpdate never sets RetainAllVariantProperties (default
    false: "use the variant properties specified in a new EndpointConfig"), so a release resets
    the champion from the 5 instances autoscaling chose to its initial 2. The provider retains
    counts and takes only the weights from the new configuration (ExcludeRetainedVariantProperties
    ``DesiredWeight``)."""
    before = provider.create(props())
    sm.update_endpoint_weights_and_capacities(  # what Application Auto Scaling does on load
        EndpointName="churn",
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredInstanceCount": 5}],
    )
    live(fake)
    release = props(models={"champion": model("v3"), "challenger": model("v2")})
    provider.update("churn", before.outs, release)
    (request,) = fake.requests("UpdateEndpoint")
    assert request["RetainAllVariantProperties"] is True
    assert request["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    assert request["DeploymentConfig"] == deployment()
    assert counts(fake) == {"champion": 5, "challenger": 2}


def test_a_rollout_longer_than_an_hour_is_waited_for(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, clock: FakeClock
) -> None:
    """Item 4. pulumi-aws's waitEndpointInService has ``timeout = 60 * time.Minute`` and the
    resource has no Timeouts block, so ``custom_timeouts`` cannot extend it; a canary with long
    baking fails the wait while SageMaker carries on. The provider waits as long as its
    ``timeouts.update`` (derived from the rollout)."""
    slow = {"poll_seconds": 300.0}
    before = provider.create(props(**slow))
    fake.script("update", Script(steps=20))  # 20 polls x 300 s = 100 minutes
    start = clock.now()
    after = provider.update(
        "churn",
        before.outs,
        props(**slow, models={"champion": model("v3"), "challenger": model("v2")}),
    )
    assert clock.now() - start > HOUR
    assert after.outs["endpoint_config_name"] == live(fake)["EndpointConfigName"]

    fake.script("update", Script(steps=1000))  # longer than the 3-hour timeout given
    with pytest.raises(EndpointDeploymentError, match=r"still Updating after 10800 s"):
        provider.update(
            "churn",
            after.outs,
            props(**slow, models={"champion": model("v4"), "challenger": model("v2")}),
        )


@pytest.mark.parametrize("reason", ["alarm churn-5xx fired", None])
def test_a_rollback_fails_the_update_and_deletes_nothing_that_serves(
    provider: SageMakerEndpointProvider,
    fake: FakeSageMaker,
    autoscaling: Callable[[], Any],
    reason: str | None,
) -> None:
    """Item 2. When SageMaker rolls an update back the endpoint returns InService on the old
    configuration (hashicorp/terraform-provider-aws#48997, #46663), possibly without a
    FailureReason (PR #49020); pulumi-aws's wait then returns success and Pulumi deletes the old
    configuration and models, which serve. The provider fails with the reason, deletes nothing,
    and leaves the autoscaling of the serving variants in place."""
    before = provider.create(props())
    fake.script("update", Script(outcome="roll_back", reason=reason))
    release = props(
        models={"champion": model("v3"), "challenger": model("v2")},
        config={
            "ProductionVariants": [variant("champion", kind="ml.c5.xlarge"), variant("challenger")]
        },
    )
    with pytest.raises(EndpointRolledBack) as caught:
        provider.update("churn", before.outs, release)
    message = str(caught.value)
    assert "rolled the update" in message
    assert before.outs["endpoint_config_name"] in message
    assert (reason or "SageMaker gave no FailureReason") in message
    assert live(fake)["EndpointConfigName"] == before.outs["endpoint_config_name"]
    assert "DeleteEndpointConfig" not in fake.operations()
    assert "DeleteModel" not in fake.operations()
    assert set(before.outs["model_names"].values()) <= set(fake.models)
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


def test_removing_an_autoscaled_variant_deregisters_it_first(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """Item 1. SageMaker refuses an update that drops (or re-types) a variant registered with
    Application Auto Scaling (endpoint-scaling-update.html: deregister, update, register again).
    With pulumi-aws the removed ``appautoscaling.Target`` is deleted only after the endpoint
    update, which therefore fails."""
    both = props(
        autoscaling={"champion": scaling(), "challenger": scaling(1, 4)},
        weights={"champion": 50.0, "challenger": 50.0},
    )
    before = provider.create(both)
    assert set(targets(autoscaling)) == {
        "endpoint/churn/variant/champion",
        "endpoint/churn/variant/challenger",
    }
    only_champion = props(
        models={"champion": model("v1")},
        config={"ProductionVariants": [variant("champion")]},
        weights={"champion": 100.0},
    )
    assert provider.diff("churn", before.outs, only_champion).replaces == []
    provider.update("churn", before.outs, only_champion)
    assert [v["VariantName"] for v in live(fake)["ProductionVariants"]] == ["champion"]
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}
    assert fake.operations("UpdateEndpoint") == ["UpdateEndpoint"]


def test_an_instance_type_change_of_an_autoscaled_variant_is_registered_again(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """endpoint-scaling-update.html: changing the instance type of an autoscaled variant fails
    unless it is deregistered first; after the update it is registered again."""
    before = provider.create(props())
    retyped = props(
        config={
            "ProductionVariants": [variant("champion", kind="ml.c5.xlarge"), variant("challenger")]
        }
    )
    provider.update("churn", before.outs, retyped)
    assert fake.settle("churn")["EndpointConfigName"] == desired(retyped).config_name
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


@pytest.mark.parametrize(
    "change",
    [
        {"deployment": deployment(rollback=False)},
        {"deployment": deployment(alarms=("churn-5xx", "churn-latency"))},
        {"deployment": None},
    ],
    ids=["rollback-off", "alarms-changed", "no-guardrails"],
)
def test_guardrail_changes_update_in_place_without_calls(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, change: dict[str, Any]
) -> None:
    """Item 1. pulumi-aws marks ``deployment_config.auto_rollback_configuration`` ForceNew
    (endpoint.go), so turning rollback off or changing the alarm list replaces an endpoint with a
    fixed name ("Cannot create already existing endpoint"). SageMaker takes the deployment
    configuration with each UpdateEndpoint, so the provider records it and calls nothing."""
    before = provider.create(props())
    fake.calls.clear()
    changed = props(**change)
    diff = provider.diff("churn", before.outs, changed)
    assert (diff.changes, diff.replaces) == (True, [])
    after = provider.update("churn", before.outs, changed)
    assert writes(fake) == []
    assert after.outs["deployment"] == change["deployment"]


@pytest.mark.parametrize(
    ("change", "replaced"),
    [
        ({"endpoint_name": "churn-2"}, ["endpoint_name"]),
        ({"region": "eu-west-1"}, ["region"]),
        ({"models": {"champion": model("v1"), "challenger": model("v2"), "c": model("v3")}}, []),
        ({"timeouts": {"create": HOUR, "update": 5 * HOUR, "delete": HOUR}}, []),
    ],
)
def test_only_a_new_name_or_region_replaces_the_endpoint(
    provider: SageMakerEndpointProvider,
    change: dict[str, Any],
    replaced: list[str],
) -> None:
    old = {**props(), "endpoint_config_name": desired(props()).config_name}
    assert provider.diff("churn", old, props(**change)).replaces == replaced


def test_adding_renaming_and_removing_variants_is_an_update(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """Item 1. A renamed variant is a new variant next to a removed one: one UpdateEndpoint, no
    replacement, the endpoint keeps its name."""
    before = provider.create(props())
    renamed = props(
        models={"champion": model("v1"), "candidate": model("v2")},
        config={"ProductionVariants": [variant("champion"), variant("candidate")]},
        weights={"champion": 100.0, "candidate": 0.0},
    )
    assert provider.diff("churn", before.outs, renamed).replaces == []
    after = provider.update("churn", before.outs, renamed)
    assert sorted(after.outs["live_weights"]) == ["candidate", "champion"]
    assert fake.operations("CreateEndpoint") == ["CreateEndpoint"]


def test_an_update_in_flight_is_waited_out_first(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, sm: Any
) -> None:
    """UpdateEndpoint on an endpoint that is Updating is refused; the provider waits for a
    running update (e.g. autoscaling's, or an interrupted run's) to finish first."""
    before = provider.create(props())
    fake.script("weights", Script(steps=5))
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredInstanceCount": 3}],
    )
    provider.update(
        "churn", before.outs, props(models={"champion": model("v3"), "challenger": model("v2")})
    )
    assert fake.settle("churn")["EndpointStatus"] == "InService"


def test_create_adopts_an_endpoint_that_already_exists(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """A create that Pulumi did not record (an interrupted first ``up``) must not answer "Cannot
    create already existing endpoint": the provider updates the existing endpoint instead."""
    provider.create(props())
    fake.calls.clear()
    adopted = provider.create(props(models={"champion": model("v3"), "challenger": model("v2")}))
    assert "CreateEndpoint" not in fake.operations()
    assert fake.operations("UpdateEndpoint") == ["UpdateEndpoint"]
    assert adopted.outs["endpoint_config_name"] == fake.settle("churn")["EndpointConfigName"]


def test_a_failed_create_reports_the_reason(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    fake.script("create", Script(outcome="fail", reason="image not found"))
    with pytest.raises(EndpointDeploymentError, match="Failed: image not found"):
        provider.create(props())


def test_refresh_records_weights_changed_by_hand(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, sm: Any
) -> None:
    """``pulumi refresh`` reads the live weights; the next diff sees the drift and the update
    puts the stack's weights back."""
    created = provider.create(props())
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[{"VariantName": "challenger", "DesiredWeight": 50}],
    )
    live(fake)
    read = provider.read("churn", created.outs)
    assert read.outs["live_weights"] == {"champion": 100.0, "challenger": 50.0}
    assert provider.diff("churn", read.outs, props()).changes is True
    after = provider.update("churn", read.outs, props())
    assert after.outs["live_weights"] == {"champion": 100.0, "challenger": 0.0}


def test_delete_removes_the_endpoint_then_what_no_endpoint_uses(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    before = provider.create(props())
    after = provider.update(
        "churn", before.outs, props(models={"champion": model("v3"), "challenger": model("v2")})
    )
    provider.delete("churn", after.outs)
    assert fake.endpoints == {}
    assert fake.configs == {}
    assert fake.models == {}
    assert targets(autoscaling) == {}


# -- failure paths: whatever stops a run, the next ``pulumi up`` finds state and cloud agreeing --
# Pulumi keeps a resource's old inputs when its update raises or the process dies, so the next
# run calls ``update`` again with the same olds and news.


def retyped() -> dict[str, Any]:
    """A release that changes the autoscaled champion's instance type (so it is deregistered
    for the update, endpoint-scaling-update.html)."""
    return props(
        models={"champion": model("v3"), "challenger": model("v2")},
        config={
            "ProductionVariants": [variant("champion", kind="ml.c5.xlarge"), variant("challenger")]
        },
    )


def test_an_interrupted_release_is_finished_by_the_next_run_without_a_second_update(
    provider: SageMakerEndpointProvider,
    fake: FakeSageMaker,
    clock: FakeClock,
    autoscaling: Callable[[], Any],
) -> None:
    """The run dies while SageMaker deploys (after the champion was deregistered and
    UpdateEndpoint sent). The rerun waits the deployment out, sees the endpoint on the wanted
    configuration, sends no second UpdateEndpoint and registers the champion again."""
    before = provider.create(props())
    fake.script("update", Script(steps=6))
    clock.interrupt_after = 2
    with pytest.raises(Interrupted):
        provider.update("churn", before.outs, retyped())
    assert targets(autoscaling) == {}  # deregistered, and nobody put it back
    after = provider.update("churn", before.outs, retyped())
    assert fake.operations("UpdateEndpoint") == ["UpdateEndpoint"]
    assert after.outs["endpoint_config_name"] == desired(retyped()).config_name
    assert live(fake)["EndpointConfigName"] == desired(retyped()).config_name
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


def test_a_timed_out_release_leaves_autoscaling_to_the_run_that_sees_it_end(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """The wait runs out while SageMaker still deploys: the outcome is unknown, so nothing is
    registered on variants the update may remove (a scalable target on a missing variant would
    be left behind); the error says so. The next run, once SageMaker is done, registers the
    champion again without deploying twice."""
    short = {"timeouts": {"create": HOUR, "update": 600, "delete": HOUR}}
    before = provider.create(props(**short))
    fake.script("update", Script(steps=30))  # 30 polls x 30 s > 600 s
    release = {**retyped(), **short}
    with pytest.raises(EndpointStillBusy, match=r"Autoscaling of \['champion'\] stays off"):
        provider.update("churn", before.outs, release)
    assert targets(autoscaling) == {}
    assert live(fake)["EndpointConfigName"] == desired(release).config_name  # it finished later
    after = provider.update("churn", before.outs, release)
    assert fake.operations("UpdateEndpoint") == ["UpdateEndpoint"]
    assert after.outs["endpoint_config_name"] == desired(release).config_name
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


def test_a_refused_release_puts_autoscaling_back_and_changes_nothing(
    provider: SageMakerEndpointProvider,
    fake: FakeSageMaker,
    sm: Any,
    autoscaling: Callable[[], Any],
) -> None:
    """SageMaker accepts DeleteEndpointConfig on the configuration an endpoint runs (no error is
    documented) and then refuses the next UpdateEndpoint ("Could not find endpoint
    configuration", hashicorp/terraform-provider-aws#48997). The provider reports SageMaker's
    message, registers the champion again and leaves the endpoint serving as it was."""
    before = provider.create(props())
    sm.delete_endpoint_config(EndpointConfigName=before.outs["endpoint_config_name"])
    with pytest.raises(EndpointDeploymentError, match="Could not find endpoint configuration"):
        provider.update("churn", before.outs, retyped())
    state = live(fake)
    assert (state["EndpointStatus"], state["EndpointConfigName"]) == (
        "InService",
        before.outs["endpoint_config_name"],
    )
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


def test_a_failed_create_is_cleaned_up_by_the_next_run(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """A failed CreateEndpoint leaves a ``Failed`` endpoint ("DeleteEndpoint is the only
    operation that can be performed on a failed endpoint", DescribeEndpoint EndpointStatus) and
    the models and configuration it was built from; Pulumi records nothing. The next create
    deletes the failed endpoint, reuses the models and configuration (no "Cannot create already
    existing" error) and creates the endpoint again."""
    fake.script("create", Script(outcome="fail", reason="image not found"))
    with pytest.raises(EndpointDeploymentError, match="Failed: image not found"):
        provider.create(props())
    created = provider.create(props())
    assert writes(fake) == [
        "CreateModel",
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
        "DeleteEndpoint",
        "CreateEndpoint",
    ]
    assert live(fake)["EndpointStatus"] == "InService"
    assert created.outs["endpoint_config_name"] == desired(props()).config_name


def test_a_production_stack_keeps_a_failed_endpoint_and_says_what_to_do(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """SageMaker: "Failed: Endpoint could not be created, updated, or re-scaled. Use the
    FailureReason value returned by DescribeEndpoint for information about the failure.
    DeleteEndpoint is the only operation that can be performed on a failed endpoint"
    (DescribeEndpoint EndpointStatus,
    botocore ``data/sagemaker/2017-07-24/service-2.json``; API_DescribeEndpoint.html).
    Deleting loses that reason and frees the name for a whole provisioning; in production
    (``failed_endpoint: keep``, from ``policy.production``) the next run must not do it on its
    own: it fails before any write, naming the reason, how to read it, how to delete by hand and
    the stack key that lets ``pulumi up`` recreate the endpoint. With the key set (the input
    gone), the same run recreates it."""
    kept = props(failed_endpoint="keep")
    fake.script("create", Script(outcome="fail", reason="image not found"))
    with pytest.raises(EndpointDeploymentError, match="Failed: image not found"):
        provider.create(kept)
    fake.calls.clear()

    with pytest.raises(EndpointDeploymentError) as caught:
        provider.create(kept)
    message = str(caught.value)
    assert message.startswith("endpoint churn is Failed: image not found. ")
    assert "pulumi up deleted nothing and changed nothing" in message
    assert f"aws sagemaker describe-endpoint --endpoint-name churn --region {REGION}" in message
    assert f"aws sagemaker delete-endpoint --endpoint-name churn --region {REGION}" in message
    assert "ml-endpoints:sagemaker.recreate_failed_endpoint: true" in message
    assert writes(fake) == []
    assert live(fake)["EndpointStatus"] == "Failed"

    created = provider.create(props())
    assert writes(fake) == ["DeleteEndpoint", "CreateEndpoint"]
    assert live(fake)["EndpointStatus"] == "InService"
    assert created.outs["endpoint_config_name"] == desired(props()).config_name


def test_a_serving_endpoint_that_failed_is_not_deleted_by_a_production_release(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker, autoscaling: Callable[[], Any]
) -> None:
    """An endpoint that served and then went ``Failed`` ("could not be ... re-scaled",
    DescribeEndpoint EndpointStatus) while a release is pending: the production run stops before
    it creates the release's models and configuration, deletes nothing and leaves the
    autoscaling registration alone; SageMaker's reason is in the message, and when none is
    given the message says so."""
    before = provider.create(props(failed_endpoint="keep"))
    fake.fail("churn", None)
    fake.calls.clear()
    release = props(
        failed_endpoint="keep", models={"champion": model("v3"), "challenger": model("v2")}
    )
    with pytest.raises(EndpointDeploymentError, match="is Failed: SageMaker gave no"):
        provider.update("churn", before.outs, release)
    assert writes(fake) == []
    assert set(fake.configs) == {before.outs["endpoint_config_name"]}
    assert targets(autoscaling) == {"endpoint/churn/variant/champion": (2, 8)}


def test_the_failed_endpoint_choice_is_an_update_of_the_endpoint(
    provider: SageMakerEndpointProvider,
) -> None:
    """Setting ``recreate_failed_endpoint`` (the input going away) must reach the provider: it
    is an input whose change updates the endpoint in place, never replaces it."""
    verdict = provider.diff("churn", props(failed_endpoint="keep"), props())
    assert (verdict.changes, verdict.replaces) == (True, [])


def test_a_revert_to_an_earlier_configuration_ends_on_the_stacks_weights(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """Configurations are content-named without weights, so a revert reuses the earlier one,
    which still carries the weights it was created with. The release takes the weights from the
    configuration (``DesiredWeight`` is not retained); the provider then moves them to the
    stack's in place."""
    v1 = props()
    first = provider.create(v1)
    v2 = props(models={"champion": model("v1"), "challenger": model("v3")})
    second = provider.update("churn", first.outs, v2)
    reverted = props(weights={"champion": 80.0, "challenger": 20.0})
    assert desired(reverted).config_name == first.outs["endpoint_config_name"]
    after = provider.update("churn", second.outs, reverted)
    assert after.outs["live_weights"] == {"champion": 80.0, "challenger": 20.0}
    assert shares_of(live(fake)) == {"champion": 0.8, "challenger": 0.2}
    assert fake.operations("CreateEndpointConfig") == ["CreateEndpointConfig"] * 2


def shares_of(state: dict[str, Any]) -> dict[str, float]:
    weights = {v["VariantName"]: v["CurrentWeight"] for v in state["ProductionVariants"]}
    return {name: weight / sum(weights.values()) for name, weight in weights.items()}


def test_an_endpoint_deployed_with_pulumi_aws_is_taken_over_in_place(
    provider: SageMakerEndpointProvider,
    fake: FakeSageMaker,
    sm: Any,
    autoscaling: Callable[[], Any],
) -> None:
    """The upgrade path of stacks/README.md: after ``pulumi state delete`` of the old
    ``aws:sagemaker`` and ``aws:appautoscaling`` resources, Pulumi *creates* the dynamic resource.
    It must take the live endpoint over with one UpdateEndpoint (never CreateEndpoint: "Cannot
    create already existing endpoint"), keep the autoscaled capacity, end with the one scaling
    policy pulumi-aws had declared under the same name (PutScalingPolicy replaces a policy of
    that name), and leave the old, untagged configuration and models alone: ``gc`` never
    considers them (they are removed by hand, as the README says)."""
    sm.create_model(ModelName="churn-champion-0a1b2c", **model("v1"))
    sm.create_model(ModelName="churn-challenger-0a1b2c", **model("v2"))
    sm.create_endpoint_config(
        EndpointConfigName="churn-config-0a1b2c",
        ProductionVariants=[
            {
                **variant("champion"),
                "ModelName": "churn-champion-0a1b2c",
                "InitialVariantWeight": 1,
            },
            {
                **variant("challenger"),
                "ModelName": "churn-challenger-0a1b2c",
                "InitialVariantWeight": 0,
            },
        ],
    )
    sm.create_endpoint(EndpointName="churn", EndpointConfigName="churn-config-0a1b2c")
    live(fake)
    scaler = autoscaling()
    target = "endpoint/churn/variant/champion"
    scaler.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=target,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=2,
        MaxCapacity=8,
    )
    scaler.put_scaling_policy(
        PolicyName="champion-invocations-per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=target,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 300.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )
    sm.update_endpoint_weights_and_capacities(
        EndpointName="churn",
        DesiredWeightsAndCapacities=[{"VariantName": "champion", "DesiredInstanceCount": 4}],
    )
    live(fake)
    fake.calls.clear()

    adopted = provider.create(props())
    assert "CreateEndpoint" not in fake.operations()
    assert fake.operations("UpdateEndpoint") == ["UpdateEndpoint"]
    assert adopted.outs["endpoint_config_name"] == desired(props()).config_name
    assert counts(fake) == {"champion": 4, "challenger": 2}
    policies = scaler.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [
        (p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        for p in policies
    ] == [("champion-invocations-per-instance", 600.0)]
    assert {"churn-config-0a1b2c", "churn-champion-0a1b2c"} <= set(fake.configs) | set(fake.models)
    garbage = find_garbage(sm, "churn", min_age_s=0)
    assert not {"churn-config-0a1b2c"} & set(garbage.configs)
    assert not {"churn-champion-0a1b2c", "churn-challenger-0a1b2c"} & set(garbage.models)


def test_a_failed_rollback_is_reported_with_its_status_and_deletes_nothing(
    provider: SageMakerEndpointProvider, fake: FakeSageMaker
) -> None:
    """UpdateRollbackFailed: "Both the rolling deployment and auto-rollback failed. Your endpoint
    is in service with a mix of the old and new endpoint configurations" (DescribeEndpoint
    EndpointStatus). ``pulumi up`` fails naming that status and SageMaker's reason; neither the
    old nor the new configuration and models are deleted (both may serve)."""
    before = provider.create(props())
    fake.script("update", Script(outcome="fail", reason="alarm churn-5xx fired; rollback failed"))
    with pytest.raises(EndpointRolledBack) as caught:
        provider.update("churn", before.outs, retyped())
    assert "could neither complete the update" in str(caught.value)
    assert "UpdateRollbackFailed, serving a mix of" in str(caught.value)
    assert "alarm churn-5xx fired; rollback failed" in str(caught.value)
    assert {before.outs["endpoint_config_name"], desired(retyped()).config_name} <= set(
        fake.configs
    )
    assert set(desired(retyped()).model_names.values()) <= set(fake.models)
    assert not [op for op in fake.operations() if op.startswith("Delete")]
