"""Alarms on the container's signals: requests botocore accepts and moto_server stores as
given, watching exactly the metrics CloudWatch extracts from the lines the container writes.

The extraction below follows the EMF specification: for each directive, each metric in each
dimension set becomes one metric identified by namespace, name and the dimension values
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.aws.signal_alarms import (
    DriftAlarm,
    LatencyAlarm,
    ServerErrorAlarm,
    SignalAlarmsArgs,
    alarm_name,
    alarm_requests,
)
from serving import cloud_signals as cs

NAMESPACE = "ml-endpoints"
LINE = cs.emf_formatter(NAMESPACE, "churn", "green", {"model": "churn"})(
    cs.IntervalSignals(200, 4, 9, 1.5, 12.0, 0, 1, 1)
)


def extracted(document: dict[str, Any]) -> dict[tuple[str, str, frozenset[tuple[str, str]]], Any]:
    """(namespace, metric name, dimensions) -> value, as CloudWatch Logs extracts them."""
    out = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dims = frozenset((key, document[key]) for key in dimension_set)
            for metric in directive["Metrics"]:
                out[(directive["Namespace"], metric["Name"], dims)] = document[metric["Name"]]
    return out


def watched(request: dict[str, Any]) -> list[tuple[str, str, frozenset[tuple[str, str]]]]:
    """The metrics an alarm request reads."""
    stats = [q["MetricStat"]["Metric"] for q in request.get("Metrics", []) if "MetricStat" in q]
    if "MetricName" in request:
        stats.append(request)
    return [
        (
            m["Namespace"],
            m["MetricName"],
            frozenset((d["Name"], d["Value"]) for d in m["Dimensions"]),
        )
        for m in stats
    ]


def test_every_alarm_watches_a_metric_the_container_writes() -> None:
    metrics = extracted(LINE)
    requests = alarm_requests("churn", "green", NAMESPACE, SignalAlarmsArgs())
    assert set(requests) == {"container_5xx", "container_latency", "drift"}
    for signal, request in requests.items():
        for identity in watched(request):
            assert identity in metrics, f"{signal} watches {identity}, not written by the container"


def test_moto_accepts_and_stores_the_requests(aws_client: Callable[[str], Any]) -> None:
    cloudwatch = aws_client("cloudwatch")
    requests = alarm_requests("churn", "green", NAMESPACE, SignalAlarmsArgs())
    for request in requests.values():
        cloudwatch.put_metric_alarm(**request)  # botocore validates against the API model
    alarms = {
        a["AlarmName"]: a
        for a in cloudwatch.describe_alarms(AlarmNamePrefix="churn-green-")["MetricAlarms"]
    }
    assert set(alarms) == {
        "churn-green-container-5xx",
        "churn-green-container-latency",
        "churn-green-drift",
    }
    ratio = alarms["churn-green-container-5xx"]
    assert [m["Id"] for m in ratio["Metrics"]] == ["errors", "requests", "ratio"]
    assert ratio["Metrics"][2]["Expression"] == "IF(requests > 0, errors / requests, 0)"
    assert [m.get("ReturnData") for m in ratio["Metrics"]] == [False, False, True]
    assert (ratio["Threshold"], ratio["ComparisonOperator"]) == (0.01, "GreaterThanThreshold")
    latency = alarms["churn-green-container-latency"]
    assert (latency["MetricName"], latency["Statistic"], latency["Threshold"]) == (
        "LatencyP99",
        "Maximum",
        1000.0,
    )
    drift = alarms["churn-green-drift"]
    assert (drift["MetricName"], drift["Statistic"], drift["Period"]) == (
        "DriftDetected",
        "Average",
        300,
    )
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["DatapointsToAlarm"] <= alarm["EvaluationPeriods"]


def test_null_leaves_an_alarm_out() -> None:
    requests = alarm_requests(
        "churn", "green", NAMESPACE, SignalAlarmsArgs(container_latency=None, drift=None)
    )
    assert list(requests) == ["container_5xx"]
    assert alarm_name("churn", "green", "container_5xx") == requests["container_5xx"]["AlarmName"]


def test_thresholds_reach_the_requests() -> None:
    args = SignalAlarmsArgs(
        container_5xx=ServerErrorAlarm(ratio=0.05, evaluation_periods=3, datapoints_to_alarm=2),
        container_latency=LatencyAlarm(p99_ms=250),
        drift=DriftAlarm(share=0.8),
    )
    requests = alarm_requests("e", "v", NAMESPACE, args)
    assert requests["container_5xx"]["Threshold"] == 0.05
    assert requests["container_5xx"]["DatapointsToAlarm"] == 2
    assert requests["container_latency"]["Threshold"] == 250
    assert requests["drift"]["Threshold"] == 0.8


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"period_s": 30}, "period_s must be a multiple of 60"),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, "must be <= evaluation_periods"),
    ],
)
def test_cloudwatch_rules(values: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServerErrorAlarm(**values)
