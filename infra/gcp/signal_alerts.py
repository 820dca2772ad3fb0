"""The container's signals in Cloud Monitoring for a Vertex AI endpoint: log-based metrics over
its structured signal lines, and alert policies on them written in PromQL.

On Vertex AI the container writes one JSON line per worker and interval to stdout
(:func:`serving.cloud_signals.cloud_logging_entry`); container logging (on by default on the v1
API, https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging) puts it in
Cloud Logging under the endpoint's monitored resource (``aiplatform.googleapis.com/Endpoint``,
label ``endpoint_id``: https://cloud.google.com/monitoring/api/resources). A JSON object line
becomes ``jsonPayload`` less Cloud Logging's special fields such as ``severity``
(https://cloud.google.com/logging/docs/structured-logging); Vertex AI's own pages do not say it
in as many words for prediction containers, so ``tests/infra/gcp/test_signal_alerts.py`` states
the entry it checks the filter and extractors against. Each signal becomes a distribution
log-based metric (``EXTRACT(jsonPayload.<member>)``, labelled by variant), which Cloud
Monitoring exposes to PromQL as a histogram (``_sum``, ``_count``) under the mapped name
``logging_googleapis_com:user_<name>`` (https://cloud.google.com/monitoring/promql/promql-mapping).
The alert policies ask the same questions as the Prometheus rules (:mod:`infra.monitoring.rules`)
with the same :class:`~infra.monitoring.config.AlertsConfig`: 5xx burn rate over a long and a
short window, p99 latency, 4xx ratio, drift share. :func:`declare_signal_alerts` declares them
(``gcp.logging.Metric`` and ``gcp.monitoring.AlertPolicy``) for :class:`VertexEndpoint`'s
``alerts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_gcp as gcp

from infra.monitoring.config import AlertsConfig, seconds
from serving import contract

if TYPE_CHECKING:
    from infra.gcp.config import VertexAlertsArgs

RESOURCE_TYPE = "aiplatform.googleapis.com/Endpoint"
VARIANT_LABEL = "variant"
"""The lines' variant member, the metrics' label: policies alert per variant."""


@dataclass(frozen=True)
class LogMetric:
    """One distribution log-based metric: its name, the member it extracts and its unit."""

    name: str
    member: str
    unit: str
    description: str

    @property
    def promql(self) -> str:
        """The metric's PromQL name (first ``/`` -> ``:``, other specials -> ``_``)."""
        return promql_name(f"logging.googleapis.com/user/{self.name}")


def promql_name(metric_type: str) -> str:
    """Cloud Monitoring's mapping of a metric type to a PromQL metric name."""
    domain, _, path = metric_type.partition("/")
    return re.sub(r"[^a-zA-Z0-9_]", "_", domain) + ":" + re.sub(r"[^a-zA-Z0-9_]", "_", path)


def log_metrics(endpoint_name: str) -> dict[str, LogMetric]:
    """The log-based metrics of one endpoint, by signal."""
    prefix = f"ml-endpoints/{endpoint_name}"
    return {
        "requests": LogMetric(
            f"{prefix}/requests", contract.SIGNAL_REQUESTS, "1", "Prediction requests"
        ),
        "server_errors": LogMetric(
            f"{prefix}/server_errors", contract.SIGNAL_SERVER_ERRORS, "1", "Requests answered 5xx"
        ),
        "client_errors": LogMetric(
            f"{prefix}/client_errors", contract.SIGNAL_CLIENT_ERRORS, "1", "Requests answered 4xx"
        ),
        "latency_p99": LogMetric(
            f"{prefix}/latency_p99",
            contract.SIGNAL_LATENCY_P99,
            "ms",
            "p99 latency per worker and interval",
        ),
        "drift": LogMetric(
            f"{prefix}/drift_detected",
            contract.SIGNAL_DRIFT_DETECTED,
            "1",
            "1 when a drift report found drift",
        ),
    }


def log_filter(endpoint_id: str) -> str:
    """The Cloud Logging filter selecting one endpoint's signal lines."""
    return (
        f'resource.type="{RESOURCE_TYPE}" AND resource.labels.endpoint_id="{endpoint_id}" '
        f'AND jsonPayload.kind="{contract.SIGNALS_KIND}"'
    )


@dataclass(frozen=True)
class AlertQuery:
    """One alert policy: PromQL condition, how long it must hold, severity and text."""

    name: str
    query: str
    duration: str
    severity: str
    documentation: str


def alert_queries(endpoint_name: str, config: AlertsConfig) -> list[AlertQuery]:
    """The alert policies of one endpoint, by :class:`AlertsConfig`."""
    metrics = log_metrics(endpoint_name)
    on = f'{{monitored_resource="{RESOURCE_TYPE}"}}'

    def rate(signal: str, window: str, part: str = "sum") -> str:
        return f"sum by (variant) (rate({metrics[signal].promql}_{part}{on}[{window}]))"

    def ratio(signal: str, window: str) -> str:
        return f"{rate(signal, window)} / {rate('requests', window)}"

    out: list[AlertQuery] = []
    if (availability := config.availability) is not None:
        budget = 1 - availability.objective
        for burn in availability.burn_rates:
            limit = f"{burn.burn_rate * budget:.6g}"
            out.append(
                AlertQuery(
                    f"{endpoint_name}: 5xx burn rate {burn.burn_rate:g}x "
                    f"({burn.long_window}/{burn.short_window})",
                    f"({ratio('server_errors', burn.long_window)} > {limit}) and "
                    f"({ratio('server_errors', burn.short_window)} > {limit})",
                    burn.for_,
                    "CRITICAL" if burn.severity == "critical" else "WARNING",
                    f"5xx answers use the error budget of the {availability.objective:.4g} "
                    f"objective {burn.burn_rate:g} times too fast over {burn.long_window}.",
                )
            )
    if (latency := config.latency) is not None:
        mean_p99 = f"{rate('latency_p99', latency.window)} / " + rate(
            "latency_p99", latency.window, "count"
        )
        out.append(
            AlertQuery(
                f"{endpoint_name}: p99 latency",
                f"{mean_p99} > {latency.p99_seconds * 1000:g}",
                latency.for_,
                "WARNING",
                f"The workers' p99 latency averages above {latency.p99_seconds * 1000:g} ms.",
            )
        )
    if (client := config.client_errors) is not None:
        out.append(
            AlertQuery(
                f"{endpoint_name}: 4xx ratio",
                f"{ratio('client_errors', client.window)} > {client.ratio:g}",
                client.for_,
                "WARNING",
                "Callers send what the model does not accept (often a feature-schema change).",
            )
        )
    if (drift := config.drift) is not None:
        share = f"{rate('drift', drift.window)} / {rate('drift', drift.window, 'count')}"
        out.append(
            AlertQuery(
                f"{endpoint_name}: input drift",
                f"{share} >= {drift.share:g}",
                drift.for_,
                "WARNING",
                "Most drift reports found drift against the reference profile "
                "(GET /drift on an instance names the features).",
            )
        )
    return out


#: Bucket bounds of every distribution metric: 1, 2, 4 ... 2^40 covers request counts per
#: interval and latencies in ms alike. The policies read only ``_sum`` and ``_count``.
BUCKETS = gcp.logging.MetricBucketOptionsArgs(
    exponential_buckets=gcp.logging.MetricBucketOptionsExponentialBucketsArgs(
        num_finite_buckets=40, growth_factor=2, scale=1
    )
)


def declare_signal_alerts(
    name: str,
    signal_name: str,
    project: str,
    endpoint_id: pulumi.Input[str],
    config: VertexAlertsArgs,
    parent: pulumi.Resource,
) -> list[gcp.monitoring.AlertPolicy]:
    """A log-based metric per signal of endpoint ``endpoint_id``'s lines, and an alert policy per
    :func:`alert_queries` (named after ``signal_name``, unique in the project)."""
    child = pulumi.ResourceOptions(parent=parent)
    log_entries = pulumi.Output.from_input(endpoint_id).apply(log_filter)
    metrics = [
        gcp.logging.Metric(
            f"{name}-{key.replace('_', '-')}",
            project=project,
            name=metric.name,
            description=metric.description,
            filter=log_entries,
            value_extractor=f"EXTRACT(jsonPayload.{metric.member})",
            label_extractors={VARIANT_LABEL: f"EXTRACT(jsonPayload.{VARIANT_LABEL})"},
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA",
                value_type="DISTRIBUTION",
                unit=metric.unit,
                labels=[
                    gcp.logging.MetricMetricDescriptorLabelArgs(
                        key=VARIANT_LABEL, value_type="STRING", description="Variant name"
                    )
                ],
            ),
            bucket_options=BUCKETS,
            opts=child,
        )
        for key, metric in log_metrics(signal_name).items()
    ]
    # A metric has no series before its first line: validation would refuse the condition.
    after_metrics = pulumi.ResourceOptions(parent=parent, depends_on=metrics)
    return [
        gcp.monitoring.AlertPolicy(
            f"{name}-alert-{index}",
            project=project,
            display_name=query.name,
            combiner="OR",
            severity=query.severity,
            notification_channels=config.notification_channels or None,
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                content=query.documentation, mime_type="text/markdown"
            ),
            conditions=[
                gcp.monitoring.AlertPolicyConditionArgs(
                    display_name=query.name,
                    condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                        query=query.query,
                        duration=f"{seconds(query.duration):.0f}s",
                        disable_metric_validation=True,
                        labels=dict(config.labels) or None,  # as on the Prometheus alerts
                    ),
                )
            ],
            opts=after_metrics,
        )
        for index, query in enumerate(alert_queries(signal_name, config))
    ]
