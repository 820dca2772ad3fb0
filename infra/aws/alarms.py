"""CloudWatch alarms per production variant; blue/green updates roll back when one fires."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from infra.aws.config import AlarmArgs, RollbackAlarmsArgs, VariantArgs

NAMESPACE = "AWS/SageMaker"
#: CloudWatch reports ModelLatency in microseconds.
MICROSECONDS_PER_MS = 1000


def alarm_names(endpoint_name: str, variant_name: str) -> tuple[str, str]:
    """The 5XX-error and latency alarm names of one variant."""
    base = f"{endpoint_name}-{variant_name}"
    return f"{base}-invocation-5xx-errors", f"{base}-model-latency"


def _alarm(
    resource_name: str,
    name: str,
    description: str,
    metric_name: str,
    dimensions: dict[str, str],
    args: AlarmArgs,
    *,
    statistic: str,
    comparison_operator: str,
    threshold: float,
    parent: pulumi.Resource,
) -> aws.cloudwatch.MetricAlarm:
    percentile = statistic.startswith("p")
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=name,
        alarm_description=description,
        namespace=NAMESPACE,
        metric_name=metric_name,
        dimensions=dimensions,
        statistic=None if percentile else statistic,
        extended_statistic=statistic if percentile else None,
        comparison_operator=comparison_operator,
        threshold=threshold,
        period=args.period_s,
        evaluation_periods=args.evaluation_periods,
        datapoints_to_alarm=args.datapoints_to_alarm,
        treat_missing_data="notBreaching",
        opts=pulumi.ResourceOptions(parent=parent),
    )


def create_rollback_alarms(
    resource_name: str,
    endpoint_name: str,
    variants: Sequence[VariantArgs],
    args: RollbackAlarmsArgs,
    parent: pulumi.Resource,
) -> list[aws.cloudwatch.MetricAlarm]:
    """Two alarms per variant: ``Invocation5XXErrors`` (sum) at or above its threshold, and
    ``ModelLatency`` (the chosen statistic) above its threshold in milliseconds."""
    alarms = []
    errors, latency = args.invocation_5xx_errors, args.model_latency
    for variant in variants:
        errors_name, latency_name = alarm_names(endpoint_name, variant.name)
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant.name}
        alarms.append(
            _alarm(
                f"{resource_name}-{variant.name}-5xx",
                errors_name,
                f"{endpoint_name}/{variant.name}: >= {errors.threshold:g} invocation 5XX errors "
                f"per {errors.period_s} s (rolls back blue/green updates)",
                "Invocation5XXErrors",
                dimensions,
                errors,
                statistic="Sum",
                comparison_operator="GreaterThanOrEqualToThreshold",
                threshold=errors.threshold,
                parent=parent,
            )
        )
        alarms.append(
            _alarm(
                f"{resource_name}-{variant.name}-latency",
                latency_name,
                f"{endpoint_name}/{variant.name}: model latency {latency.statistic} above "
                f"{latency.threshold:g} ms (rolls back blue/green updates)",
                "ModelLatency",
                dimensions,
                latency,
                statistic=latency.statistic,
                comparison_operator="GreaterThanThreshold",
                threshold=latency.threshold * MICROSECONDS_PER_MS,
                parent=parent,
            )
        )
    return alarms
