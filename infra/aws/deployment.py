"""Blue/green rollout of endpoint updates: SageMaker's ``DeploymentConfig`` and how long the
endpoint's provider waits for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.aws.config import DeploymentArgs, VariantArgs

#: Launching instances, pulling the image and downloading the model, before any shifting.
PROVISIONING_S = 20 * 60
#: Slack on top of SageMaker's own limits before Pulumi gives up waiting.
TIMEOUT_MARGIN_S = 10 * 60

_TRAFFIC_TYPES = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
_CAPACITY_TYPES = {"percent": "CAPACITY_PERCENT", "instances": "INSTANCE_COUNT"}


def provisioning_s(variants: Sequence[VariantArgs]) -> int:
    """Time to bring up a fleet: a base plus the variants' longest download and health-check
    allowances."""
    return PROVISIONING_S + max(
        (v.model_data_download_timeout_s or 0) + (v.container_startup_health_check_timeout_s or 0)
        for v in variants
    )


def deployment_request(
    args: DeploymentArgs, variants: Sequence[VariantArgs], alarm_names: Sequence[str]
) -> dict[str, Any]:
    """SageMaker's ``DeploymentConfig`` (API shape, as UpdateEndpoint takes it): blue/green
    traffic shifting with baking waits, and auto-rollback on ``alarm_names`` when on."""
    counts = [v.instance_count for v in variants]
    routing: dict[str, Any] = {
        "Type": _TRAFFIC_TYPES[args.strategy],
        "WaitIntervalInSeconds": args.wait_interval_s,
    }
    step = args.effective_step
    if step is not None:
        size_key = "CanarySize" if args.strategy == "canary" else "LinearStepSize"
        routing[size_key] = {"Type": _CAPACITY_TYPES[step.unit], "Value": step.value}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": args.termination_wait_s,
            "MaximumExecutionTimeoutInSeconds": args.execution_timeout_s(counts),
        }
    }
    if args.auto_rollback and alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names]}
    return config


def timeouts_s(args: DeploymentArgs, variants: Sequence[VariantArgs]) -> dict[str, int]:
    """How long the endpoint's provider waits, in seconds: creating waits for provisioning;
    updating also for the whole traffic shift (SageMaker's execution timeout) and a rollback of
    the same length. No 60-minute cap (the Terraform provider's ``waitEndpointInService``)."""
    counts = [v.instance_count for v in variants]
    create = provisioning_s(variants) + TIMEOUT_MARGIN_S
    return {
        "create": create,
        "update": create + 2 * args.execution_timeout_s(counts),
        "delete": PROVISIONING_S,
    }
