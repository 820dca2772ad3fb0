"""CloudWatch alarms on the serving container's own signals, per SageMaker variant.

On SageMaker the container writes one CloudWatch embedded-metric-format line per worker and
interval (:mod:`serving.cloud_signals`); CloudWatch Logs turns them into metrics in the stack's
``metrics_namespace`` with the dimensions ``EndpointName`` and ``VariantName``, the names
SageMaker's own ``AWS/SageMaker`` metrics use. These alarms watch them:

- ``container-5xx``: the share of requests the container answered with 5xx (metric math
  ``ServerErrors / Requests`` over the period), above ``ratio``;
- ``container-latency``: the worst worker's p99 (``Maximum`` of ``LatencyP99``, milliseconds);
- ``drift``: the share of drift reports that found drift (``Average`` of ``DriftDetected``).

Each is described as the ``PutMetricAlarm`` request CloudWatch takes, so that the component (or
a provider calling boto3) declares exactly what the API receives. Log delivery from SageMaker is
not instantaneous, so every alarm fires on M of N periods, as CloudWatch recommends for EMF
metrics whose flushing one does not control
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Alarms.html),
and missing data (an idle variant writes no latency) never breaches.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from serving import contract

Signal = Literal["container_5xx", "container_latency", "drift"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Periods(_Frozen):
    period_s: int = 60
    evaluation_periods: Annotated[int, Field(ge=1)] = 5
    datapoints_to_alarm: Annotated[int, Field(ge=1)] = 3

    @model_validator(mode="after")
    def _cloudwatch_rules(self) -> Self:
        if self.period_s < 60 or self.period_s % 60:
            # EMF metrics are standard resolution (no StorageResolution in our directives)
            raise ValueError(f"period_s must be a multiple of 60, got {self.period_s}")
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm ({self.datapoints_to_alarm}) must be <= "
                f"evaluation_periods ({self.evaluation_periods})"
            )
        return self


class ServerErrorAlarm(_Periods):
    """5xx answers above ``ratio`` of requests (the container's own count)."""

    ratio: Annotated[float, Field(gt=0, le=1)] = 0.01


class LatencyAlarm(_Periods):
    """The worst worker's p99 above ``p99_ms``."""

    p99_ms: Annotated[float, Field(gt=0, le=60_000)] = 1000


class DriftAlarm(_Periods):
    """At least ``share`` of the drift reports in a period found drift."""

    share: Annotated[float, Field(gt=0, le=1)] = 0.5
    period_s: int = 300
    evaluation_periods: Annotated[int, Field(ge=1)] = 2
    datapoints_to_alarm: Annotated[int, Field(ge=1)] = 2


class SignalAlarmsArgs(_Frozen):
    """Alarms on the container's signals; ``null`` leaves one out."""

    container_5xx: ServerErrorAlarm | None = ServerErrorAlarm()
    container_latency: LatencyAlarm | None = LatencyAlarm()
    drift: DriftAlarm | None = DriftAlarm()


def alarm_name(endpoint_name: str, variant_name: str, signal: Signal) -> str:
    """``{endpoint}-{variant}-container-5xx`` and so on."""
    return f"{endpoint_name}-{variant_name}-{signal.replace('_', '-')}"


def alarm_requests(
    endpoint_name: str, variant_name: str, namespace: str, args: SignalAlarmsArgs
) -> dict[Signal, dict[str, Any]]:
    """The ``PutMetricAlarm`` request of each configured alarm of one variant."""
    dimensions = [
        {"Name": contract.SIGNAL_ENDPOINT_DIMENSION, "Value": endpoint_name},
        {"Name": contract.SIGNAL_VARIANT_DIMENSION, "Value": variant_name},
    ]
    where = f"{endpoint_name}/{variant_name}"

    def metric(name: str, stat: str, period: int) -> dict[str, Any]:
        return {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        }

    def common(signal: Signal, periods: _Periods, description: str) -> dict[str, Any]:
        return {
            "AlarmName": alarm_name(endpoint_name, variant_name, signal),
            "AlarmDescription": description,
            "EvaluationPeriods": periods.evaluation_periods,
            "DatapointsToAlarm": periods.datapoints_to_alarm,
            "TreatMissingData": "notBreaching",
        }

    out: dict[Signal, dict[str, Any]] = {}
    if (errors := args.container_5xx) is not None:
        period = errors.period_s
        out["container_5xx"] = {
            **common(
                "container_5xx",
                errors,
                f"{where}: more than {errors.ratio:.2%} of requests answered 5xx by the "
                "container (ml-endpoints signals)",
            ),
            "Metrics": [
                {
                    "Id": "errors",
                    "MetricStat": metric(contract.SIGNAL_SERVER_ERRORS, "Sum", period),
                    "ReturnData": False,
                },
                {
                    "Id": "requests",
                    "MetricStat": metric(contract.SIGNAL_REQUESTS, "Sum", period),
                    "ReturnData": False,
                },
                {
                    "Id": "ratio",
                    "Expression": "IF(requests > 0, errors / requests, 0)",
                    "Label": "5xx ratio",
                    "ReturnData": True,
                },
            ],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": errors.ratio,
        }
    if (latency := args.container_latency) is not None:
        out["container_latency"] = {
            **common(
                "container_latency",
                latency,
                f"{where}: p99 latency above {latency.p99_ms:g} ms in the worst worker",
            ),
            "Namespace": namespace,
            "MetricName": contract.SIGNAL_LATENCY_P99,
            "Dimensions": dimensions,
            "Statistic": "Maximum",
            "Period": latency.period_s,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": latency.p99_ms,
        }
    if (drift := args.drift) is not None:
        out["drift"] = {
            **common(
                "drift",
                drift,
                f"{where}: at least {drift.share:.0%} of the drift reports found input drift",
            ),
            "Namespace": namespace,
            "MetricName": contract.SIGNAL_DRIFT_DETECTED,
            "Dimensions": dimensions,
            "Statistic": "Average",
            "Period": drift.period_s,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": drift.share,
        }
    return out
