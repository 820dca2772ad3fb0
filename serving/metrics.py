"""Prometheus metrics, correct with several worker processes.

With more than one worker the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts;
every worker then writes to shared files and any worker's ``/metrics`` reports all of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as mp
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from serving import contract
from serving.http import Access, Request, Response, Route
from serving.openapi import TEXT, Operation

disable_created_metrics()  # *_created series double the exposition and nobody queries them

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
SIZE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 6291456)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE = CONTENT_TYPE_LATEST


FLUSH_SECONDS = 0.05


def multiprocess_dir() -> str | None:
    """The shared metrics directory when several workers serve, else ``None``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ProtocolMetrics:
    """Pre-bound metric children for one protocol: no label lookups on the hot path."""

    __slots__ = ("errors", "latency", "request_bytes", "response_bytes", "success")

    def __init__(self, m: Metrics, protocol: str) -> None:
        labels = (*m.base, protocol)
        self.success = m.predictions.labels(*labels, "success")
        self.errors = m.predictions.labels(*labels, "error")
        self.latency = m.latency.labels(*labels)
        self.request_bytes = m.request_bytes.labels(*labels)
        self.response_bytes = m.response_bytes.labels(*labels)


class Metrics:
    """Every metric the server exports, labelled with model, version and variant."""

    def __init__(self, model: str, version: str, variant: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.base = (model, version, variant)
        base = ["model", "version", "variant"]
        reg = self.registry
        self.predictions = Counter(
            contract.PREDICTIONS_METRIC,
            "Prediction requests by protocol and outcome.",
            [*base, "protocol", "status"],
            registry=reg,
        )
        self.errors = Counter(
            contract.ERRORS_METRIC,
            "Failed prediction requests by HTTP status code.",
            [*base, "protocol", "code"],
            registry=reg,
        )
        self.rows = Counter("model_prediction_rows", "Rows predicted.", base, registry=reg)
        self.latency = Histogram(
            contract.LATENCY_METRIC,
            "Time from request received to response ready.",
            [*base, "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.request_bytes = Histogram(
            "model_request_size_bytes",
            "Prediction request body sizes.",
            [*base, "protocol"],
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.response_bytes = Histogram(
            "model_response_size_bytes",
            "Prediction response body sizes.",
            [*base, "protocol"],
            buckets=SIZE_BUCKETS,
            registry=reg,
        )
        self.batch_rows = Histogram(
            contract.BATCH_ROWS_METRIC,
            "Rows per model call (adaptive micro-batching).",
            base,
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.inflight = Gauge(
            contract.INFLIGHT_METRIC,
            "Prediction requests being handled.",
            base,
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.queue_rejections = Counter(
            contract.QUEUE_REJECTIONS_METRIC,
            "Prediction requests refused with 503 because the worker was full (in-flight limit "
            "or batch queue).",
            base,
            registry=reg,
        )
        self.load_seconds = Gauge(
            contract.LOAD_SECONDS_METRIC,
            "Seconds taken to fetch, load and warm up the model.",
            base,
            multiprocess_mode="max",
            registry=reg,
        )
        self.ready = Gauge(
            contract.READY_METRIC,
            "1 when every live worker has its model loaded and warm.",
            base,
            multiprocess_mode="livemin",
            registry=reg,
        )
        self.workers = Gauge(
            contract.WORKERS_METRIC,
            "Live worker processes.",
            base,
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.rows_child = self.rows.labels(*self.base)
        self.batch_child = self.batch_rows.labels(*self.base)
        self.inflight_child = self.inflight.labels(*self.base)
        self.ready_child = self.ready.labels(*self.base)
        self.rejections_child = self.queue_rejections.labels(*self.base)
        self.workers.labels(*self.base).set(1)
        self.ready_child.set(0)

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or all workers' shared files."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(_WorkerFiles(directory))
        return generate_latest(registry)


class RequestRecorder:
    """Per-request metrics (in-flight gauge, latency, sizes, successes), published in bulk.

    Updating five Prometheus series per request costs more than predicting a row of a small
    model, so requests are recorded in plain lists and published together: whenever no request
    is in flight, at most :data:`FLUSH_SECONDS` after anything changed, and before a scrape of
    this worker. Counts are exact; under load a scrape may miss another worker's last
    :data:`FLUSH_SECONDS`. Failures (counted by status code) are published at once.
    """

    def __init__(self, metrics: Metrics, protocols: Iterable[str]) -> None:
        self.metrics = metrics
        self.inflight = 0
        self._published = {protocol: ProtocolMetrics(metrics, protocol) for protocol in protocols}
        self._pending = {protocol: _Recorded() for protocol in self._published}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def protocols(self) -> list[str]:
        """The protocols whose requests are recorded (every series exists from the start)."""
        return list(self._published)

    def reject(self) -> None:
        """A prediction request was refused because the worker is full: counted at once."""
        self.metrics.rejections_child.inc()

    def begin(self) -> None:
        """A prediction request was admitted."""
        self.inflight += 1
        if self._timer is None:
            self._arm()

    def end(
        self,
        protocol: str,
        seconds: float,
        request_size: int,
        response_size: int,
        status: int,
        admitted: bool,
    ) -> None:
        """A prediction request was answered with ``status``."""
        recorded = self._pending[protocol]
        recorded.latency.append(seconds)
        recorded.request_bytes.append(request_size)
        recorded.response_bytes.append(response_size)
        if status < 400:
            recorded.successes += 1
        else:
            self._published[protocol].errors.inc()
            self.metrics.errors.labels(*self.metrics.base, protocol, str(status)).inc()
        if admitted:
            self.inflight -= 1
        if self.inflight == 0:
            self.flush()
        elif self._timer is None:
            self._arm()

    def flush(self) -> None:
        """Publish everything recorded so far."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.metrics.inflight_child.set(self.inflight)
        for protocol, recorded in self._pending.items():
            if not recorded.latency:
                continue
            published = self._published[protocol]
            observe_many(published.latency, recorded.latency)
            observe_many(published.request_bytes, recorded.request_bytes)
            observe_many(published.response_bytes, recorded.response_bytes)
            if recorded.successes:
                published.success.inc(recorded.successes)
            self._pending[protocol] = _Recorded()

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def route(self) -> Route:
        """``GET /metrics``: everything recorded so far is published before the exposition."""

        async def exposition(_: Request) -> Response:
            self.flush()
            return Response(self.metrics.exposition(), 200, CONTENT_TYPE)

        return Route(
            "GET", contract.METRICS_PATH, exposition, access=Access.METRICS, doc=EXPOSITION_DOC
        )


EXPOSITION_DOC = Operation("Prometheus metrics (text exposition).", {TEXT: {"type": "string"}})


class _Recorded:
    __slots__ = ("latency", "request_bytes", "response_bytes", "successes")

    def __init__(self) -> None:
        self.latency: list[float] = []
        self.request_bytes: list[int] = []
        self.response_bytes: list[int] = []
        self.successes = 0


def observe_many(histogram: Histogram, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for every value, as one update per bucket.

    Relies on prometheus_client's histogram layout (per-bucket values, a sum); the test suite
    checks the result against ``observe`` so that an upgrade which changes it fails loudly."""
    if len(values) < 8:
        for value in values:
            histogram.observe(value)
        return
    bounds = np.asarray(histogram._upper_bounds)
    slots = np.minimum(np.searchsorted(bounds, values), len(bounds) - 1)  # first bound >= value
    counts = np.bincount(slots, minlength=len(bounds))
    histogram._sum.inc(float(np.sum(values)))
    buckets = histogram._buckets
    for slot in np.flatnonzero(counts).tolist():
        buckets[slot].inc(int(counts[slot]))


class _WorkerFiles(Collector):
    """All workers' files except empty ones: prometheus_client creates a file, then sizes it,
    and fails the whole scrape on a file read in between, or left so by a worker killed in
    between (prometheus/client_python#1199). An empty file holds no samples yet."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in self.directory.glob("*.db"):
            try:
                if path.stat().st_size > 0:
                    files.append(str(path))
            except FileNotFoundError:  # a dead worker's live gauges, removed meanwhile
                continue
        merged: Iterable[Metric] = mp.MultiProcessCollector.merge(files)
        return merged


def forget_dead_workers(directory: str) -> None:
    """Drop the live-gauge files of worker processes that no longer exist (e.g. SIGKILLed)."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        try:
            pid = int(path.stem.rsplit("_", 1)[1])
        except ValueError:
            continue
        if not _alive(pid):
            mp.mark_process_dead(pid, directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
