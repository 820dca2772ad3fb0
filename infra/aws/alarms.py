"""CloudWatch alarms per production variant: on SageMaker's metrics and on the container's own
signals; blue/green updates roll back when one of those chosen by ``rollback_on`` fires."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import pulumi
import pulumi_aws as aws

from infra.aws.config import AlarmArgs, RollbackAlarmsArgs, RollbackSignal, VariantArgs
from infra.aws.signal_alarms import Signal, alarm_requests
from infra.aws.signal_alarms import alarm_name as signal_alarm_name

NAMESPACE = "AWS/SageMaker"
#: CloudWatch reports ModelLatency in microseconds.
MICROSECONDS_PER_MS = 1000


def alarm_names(endpoint_name: str, variant_name: str) -> tuple[str, str]:
    """The 5XX-error and latency alarm names of one variant."""
    base = f"{endpoint_name}-{variant_name}"
    return f"{base}-invocation-5xx-errors", f"{base}-model-latency"


def rollback_alarm_names(
    endpoint_name: str, variants: Sequence[VariantArgs], args: RollbackAlarmsArgs
) -> list[str]:
    """The alarms SageMaker watches during a blue/green update: per production variant, those
    of ``args.rollback_on`` (validated to exist and to number at most 10 in all)."""
    names = []
    for variant in variants:
        errors, latency = alarm_names(endpoint_name, variant.name)
        own: dict[RollbackSignal, str] = {"invocation_5xx_errors": errors, "model_latency": latency}
        for signal in args.rollback_signals:
            if signal in own:
                names.append(own[signal])
            else:
                names.append(signal_alarm_name(endpoint_name, variant.name, cast(Signal, signal)))
    return names


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


def metric_alarm_args(request: Mapping[str, Any]) -> dict[str, Any]:
    """``aws.cloudwatch.MetricAlarm`` keyword arguments for a ``PutMetricAlarm`` request.

    The inverse of what the Terraform provider sends (hashicorp/terraform-provider-aws
    ``internal/service/cloudwatch/metric_alarm.go``: ``metric_query`` blocks become
    ``Metrics`` entries, a block's ``metric`` their ``MetricStat``, ``dimensions`` maps the
    ``Dimensions`` list), so the alarm CloudWatch stores is the request as built.
    """

    def dimensions(items: Sequence[Mapping[str, str]]) -> dict[str, str]:
        return {d["Name"]: d["Value"] for d in items}

    queries = []
    for query in request.get("Metrics", []):
        entry: dict[str, Any] = {
            "id": query["Id"],
            "expression": query.get("Expression"),
            "label": query.get("Label"),
            "return_data": query.get("ReturnData"),
        }
        if "MetricStat" in query:
            stat = query["MetricStat"]
            entry["metric"] = {
                "metric_name": stat["Metric"]["MetricName"],
                "namespace": stat["Metric"]["Namespace"],
                "dimensions": dimensions(stat["Metric"].get("Dimensions", [])),
                "period": stat["Period"],
                "stat": stat["Stat"],
            }
        queries.append({k: v for k, v in entry.items() if v is not None})
    return {
        "name": request["AlarmName"],
        "alarm_description": request.get("AlarmDescription"),
        "namespace": request.get("Namespace"),
        "metric_name": request.get("MetricName"),
        "dimensions": dimensions(request["Dimensions"]) if "Dimensions" in request else None,
        "statistic": request.get("Statistic"),
        "period": request.get("Period"),
        "metric_queries": queries or None,
        "comparison_operator": request["ComparisonOperator"],
        "threshold": request["Threshold"],
        "evaluation_periods": request["EvaluationPeriods"],
        "datapoints_to_alarm": request.get("DatapointsToAlarm"),
        "treat_missing_data": request.get("TreatMissingData"),
    }


def create_signal_alarms(
    resource_name: str,
    endpoint_name: str,
    variants: Sequence[VariantArgs],
    namespace: str,
    args: RollbackAlarmsArgs,
    parent: pulumi.Resource,
) -> list[aws.cloudwatch.MetricAlarm]:
    """The alarms on the container's signals (``args.signals``), per production variant: the
    requests of :func:`infra.aws.signal_alarms.alarm_requests`, declared as they are."""
    alarms = []
    for variant in variants:
        requests = alarm_requests(endpoint_name, variant.name, namespace, args.signals)
        for signal, request in requests.items():
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{resource_name}-{variant.name}-{signal.replace('_', '-')}",
                    **metric_alarm_args(request),
                    opts=pulumi.ResourceOptions(parent=parent),
                )
            )
    return alarms
