"""Application Auto Scaling of a variant's instance count."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.config import AutoscalingArgs

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"


def resource_id(endpoint_name: str, variant_name: str) -> str:
    """Application Auto Scaling's id of a variant."""
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


@dataclass(frozen=True)
class VariantScaling:
    """The scalable target and its target-tracking policy."""

    target: aws.appautoscaling.Target
    policy: aws.appautoscaling.Policy


def create_variant_scaling(
    resource_name: str,
    endpoint_name: pulumi.Output[str],
    variant_name: str,
    args: AutoscalingArgs,
    parent: pulumi.Resource,
) -> VariantScaling:
    """Register the variant (after the endpoint exists: ``endpoint_name`` is its output) and
    track ``SageMakerVariantInvocationsPerInstance`` at the configured target.

    SageMaker refuses endpoint updates that change the instance type of a variant registered
    here; deregister (drop ``autoscaling``) for such an update, then add it back.
    """
    opts = pulumi.ResourceOptions(parent=parent)
    target = aws.appautoscaling.Target(
        resource_name,
        service_namespace="sagemaker",
        resource_id=endpoint_name.apply(lambda name: resource_id(name, variant_name)),
        scalable_dimension=SCALABLE_DIMENSION,
        min_capacity=args.min_instances,
        max_capacity=args.max_instances,
        opts=opts,
    )
    policy = aws.appautoscaling.Policy(
        resource_name,
        name=f"{variant_name}-invocations-per-instance",
        policy_type="TargetTrackingScaling",
        service_namespace=target.service_namespace,
        resource_id=target.resource_id,
        scalable_dimension=target.scalable_dimension,
        target_tracking_scaling_policy_configuration={
            "target_value": args.target_invocations_per_instance,
            "predefined_metric_specification": {"predefined_metric_type": METRIC},
            "scale_in_cooldown": args.scale_in_cooldown_s,
            "scale_out_cooldown": args.scale_out_cooldown_s,
            "disable_scale_in": args.disable_scale_in,
        },
        opts=opts,
    )
    return VariantScaling(target, policy)
