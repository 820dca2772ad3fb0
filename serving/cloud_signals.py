"""The signals alarms watch, as one JSON line per interval on stdout, for clouds that never scrape
``/metrics``.

On SageMaker, everything a model container writes to stdout goes to CloudWatch Logs
(``/aws/sagemaker/Endpoints/{endpoint}``, stream ``{variant}/{instance}``), and CloudWatch Logs
turns every log event in the embedded metric format (EMF) into metrics, no agent or header
needed. So each line carries an ``_aws`` directive and SageMaker alarms can watch drift, 5xx and
latency without a sidecar. On Vertex AI the container's stdout goes to Cloud Logging, where
log-based metrics extract the same members. Sources:

- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
- https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html
  (the ``x-amzn-logs-format: json/emf`` header is optional)
- https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html (stdout -> CloudWatch)
- https://cloud.google.com/vertex-ai/docs/predictions/online-prediction-logging (container logs)

Which format, if any, follows from where the server runs (:attr:`Settings.platform`) unless
``ML_ENDPOINTS_SIGNALS_MODE`` says otherwise (:func:`create_publisher`). The numbers are this
worker's counters read by a background thread once per interval: nothing is added to the request
path (``bench/README.md``, "Cloud signals": the same calls per request, on or off). Counts are
deltas since the previous line, so CloudWatch's ``Sum`` over workers and instances is the
endpoint's total; latency quantiles are this worker's, from its histogram (``Maximum`` over
workers is the worst).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from serving import contract
from serving.settings import Platform, Settings, SignalMode

log = logging.getLogger("ml_endpoints.cloud_signals")

#: Member names (= CloudWatch metric names) and units. The same names on every cloud; the
#: names live in :mod:`serving.contract`, which infra reads without the server's dependencies.
REQUESTS, SERVER_ERRORS = contract.SIGNAL_REQUESTS, contract.SIGNAL_SERVER_ERRORS
CLIENT_ERRORS, QUEUE_REJECTIONS = contract.SIGNAL_CLIENT_ERRORS, contract.SIGNAL_QUEUE_REJECTIONS
LATENCY_P50, LATENCY_P99 = contract.SIGNAL_LATENCY_P50, contract.SIGNAL_LATENCY_P99
DRIFT_DETECTED, READY = contract.SIGNAL_DRIFT_DETECTED, contract.SIGNAL_READY
UNITS = {
    REQUESTS: "Count",
    SERVER_ERRORS: "Count",
    CLIENT_ERRORS: "Count",
    LATENCY_P50: "Milliseconds",
    LATENCY_P99: "Milliseconds",
    QUEUE_REJECTIONS: "Count",
    DRIFT_DETECTED: "None",
    READY: "None",
}
#: CloudWatch dimensions, named as SageMaker's own ``AWS/SageMaker`` metrics name them.
ENDPOINT_DIMENSION = contract.SIGNAL_ENDPOINT_DIMENSION
VARIANT_DIMENSION = contract.SIGNAL_VARIANT_DIMENSION
#: Marks the line for log filters (Cloud Logging log-based metrics, CloudWatch Logs Insights).
KIND = contract.SIGNALS_KIND


@dataclass(frozen=True)
class IntervalSignals:
    """What one worker saw in one interval. ``None``: not measured (no request, no report)."""

    requests: int
    server_errors: int
    client_errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    queue_rejections: int
    drift_detected: int | None
    ready: int

    def members(self) -> dict[str, float]:
        """The measured values by member name (unmeasured ones left out)."""
        values: dict[str, float | None] = {
            REQUESTS: self.requests,
            SERVER_ERRORS: self.server_errors,
            CLIENT_ERRORS: self.client_errors,
            LATENCY_P50: self.latency_p50_ms,
            LATENCY_P99: self.latency_p99_ms,
            QUEUE_REJECTIONS: self.queue_rejections,
            DRIFT_DETECTED: self.drift_detected,
            READY: self.ready,
        }
        return {name: value for name, value in values.items() if value is not None}


class SignalReader:
    """Reads a worker's registry and returns what changed since the previous read.

    ``registry`` is the worker's own (not the multiprocess files): every worker reports its own
    share, which is what per-interval sums need.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._previous: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def read(self) -> IntervalSignals:
        current = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in self.registry.collect()
            for sample in metric.samples
        }
        previous, self._previous = self._previous, current

        def delta(name: str, code_class: str = "") -> float:
            return sum(
                value - previous.get(key, 0.0)
                for key, value in current.items()
                if key[0] == name and dict(key[1]).get("code", "").startswith(code_class)
            )

        def gauge(name: str) -> float | None:
            values = [v for (n, _), v in current.items() if n == name]
            return max(values) if values else None

        buckets: dict[float, float] = {}
        for (name, labels), value in current.items():
            if name == f"{contract.LATENCY_METRIC}_bucket":
                bound = float(dict(labels)["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value - previous.get((name, labels), 0.0)
        errors = f"{contract.ERRORS_METRIC}_total"
        drift = gauge(contract.DRIFT_DETECTED_METRIC)
        return IntervalSignals(
            requests=round(delta(f"{contract.PREDICTIONS_METRIC}_total")),
            server_errors=round(delta(errors, "5")),
            client_errors=round(delta(errors, "4")),
            latency_p50_ms=_ms(bucket_quantile(0.5, buckets)),
            latency_p99_ms=_ms(bucket_quantile(0.99, buckets)),
            queue_rejections=round(delta(f"{contract.QUEUE_REJECTIONS_METRIC}_total")),
            drift_detected=None if drift is None else int(drift),
            ready=int(gauge(contract.READY_METRIC) or 0),
        )


def bucket_quantile(quantile: float, buckets: Mapping[float, float]) -> float | None:
    """The ``quantile`` of observations counted per cumulative bucket (upper bound -> count),
    interpolated linearly inside the bucket as Prometheus' ``histogram_quantile`` does; ``None``
    without observations. Past the last finite bound the answer is that bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def emf_document(
    signals: IntervalSignals,
    namespace: str,
    dimensions: Mapping[str, str],
    timestamp_ms: int,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One EMF document: a metric directive naming every measured member, the dimension members,
    and ``properties`` (searchable in Logs Insights, not metrics)."""
    members = signals.members()
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in members],
                }
            ],
        },
        **dimensions,
        **members,
        "kind": KIND,
        **(properties or {}),
    }


def cloud_logging_entry(
    signals: IntervalSignals, labels: Mapping[str, str], properties: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One structured log entry for Cloud Logging: the same members, a ``severity`` and a
    ``message`` (the special fields Cloud Logging reads from a JSON line), ``labels`` for
    log-based metrics' label extractors."""
    members = signals.members()
    drifted = members.get(DRIFT_DETECTED) == 1
    return {
        "severity": "WARNING" if drifted or members.get(SERVER_ERRORS) else "INFO",
        "message": f"{KIND}: {members.get(REQUESTS, 0):.0f} requests, "
        f"{members.get(SERVER_ERRORS, 0):.0f} 5xx, drift {'yes' if drifted else 'no'}",
        "kind": KIND,
        **labels,
        **members,
        **(properties or {}),
    }


def write_line(document: Mapping[str, Any], fd: int = 1) -> None:
    """Write ``document`` as one line with a single ``write``: lines of several workers sharing
    stdout never interleave (a pipe write up to PIPE_BUF, 4 KiB, is atomic)."""
    os.write(fd, orjson.dumps(document) + b"\n")


class SignalPublisher:
    """A daemon thread that publishes ``format(reader.read())`` every ``interval`` seconds, and
    once more at :meth:`close` (the last interval of a worker that drains)."""

    def __init__(
        self,
        reader: SignalReader,
        format: Callable[[IntervalSignals], Mapping[str, Any]],
        interval: float,
        write: Callable[[Mapping[str, Any]], None] = write_line,
    ) -> None:
        self._reader = reader
        self._format = format
        self._interval = interval
        self._write = write
        self._stop = threading.Event()
        self._reader.read()  # the baseline: the first line counts from now
        self._thread = threading.Thread(target=self._run, name="cloud-signals", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.publish()

    def publish(self) -> None:
        """Publish the interval so far (never raises: signals must not take the server down)."""
        try:
            self._write(self._format(self._reader.read()))
        except Exception:
            log.exception("could not publish cloud signals")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.publish()


def emf_formatter(
    namespace: str, endpoint: str, variant: str, properties: Mapping[str, Any]
) -> Callable[[IntervalSignals], dict[str, Any]]:
    """EMF lines for ``endpoint``/``variant``, timestamped when written."""
    dimensions = {ENDPOINT_DIMENSION: endpoint, VARIANT_DIMENSION: variant}
    return lambda s: emf_document(s, namespace, dimensions, int(time.time() * 1000), properties)


def cloud_logging_formatter(
    labels: Mapping[str, str], properties: Mapping[str, Any]
) -> Callable[[IntervalSignals], dict[str, Any]]:
    """Cloud Logging entries carrying ``labels`` (model, version, variant)."""
    return lambda s: cloud_logging_entry(s, labels, properties)


def signal_mode(settings: Settings) -> SignalMode:
    """The format this server writes: ``auto`` resolved by platform (EMF on SageMaker, Cloud
    Logging on Vertex AI, off elsewhere: Kubernetes scrapes ``/metrics``)."""
    mode = settings.signals.mode
    if settings.signals.off_reason is not None:
        return SignalMode.OFF
    if mode is not SignalMode.AUTO:
        return mode
    platform = settings.platform
    if platform is Platform.SAGEMAKER:
        return SignalMode.EMF
    if platform is Platform.VERTEX:
        return SignalMode.CLOUD_LOGGING
    return SignalMode.OFF


def create_publisher(settings: Settings, registry: CollectorRegistry) -> SignalPublisher | None:
    """This worker's publisher of ``registry``'s signals, or ``None`` when they are off. Call it
    in the worker process (each worker reports its own share)."""
    mode = signal_mode(settings)
    if mode is SignalMode.OFF:
        return None
    identity = {
        "model": settings.model_name,
        "version": settings.model_version,
        "variant": settings.variant,
    }
    interval = settings.signals.interval_seconds
    format: Callable[[IntervalSignals], Mapping[str, Any]]
    if mode is SignalMode.EMF:
        endpoint = settings.sagemaker_endpoint or settings.model_name
        namespace = settings.signals.namespace
        format = emf_formatter(namespace, endpoint, settings.variant, identity)
        where = f"EMF lines (namespace {namespace}, endpoint {endpoint})"
    else:
        properties = {
            key: value
            for key, value in (
                ("endpoint_id", settings.aip_endpoint_id),
                ("deployed_model_id", settings.aip_deployed_model_id),
            )
            if value
        }
        format = cloud_logging_formatter(identity, properties)
        where = "Cloud Logging lines"
    log.info("cloud signals: %s on stdout every %g s", where, interval)
    return SignalPublisher(SignalReader(registry), format, interval)
