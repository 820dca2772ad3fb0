"""Cloud signal lines: EMF documents valid against the format's published schema and rules, the
interval numbers read from a worker's real metrics, and the publisher thread.

The schema below restates, in our own words, the JSON schema AWS publishes with the EMF
specification (required ``_aws`` with integer ``Timestamp`` and ``CloudWatchMetrics``; each
directive's ``Namespace``, ``Dimensions`` and ``Metrics`` with their lengths and the unit list),
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
("Embedded metric format example and JSON schema"). :func:`check_emf` adds the rules the
specification states in prose and the schema cannot express (targets exist at the root, are not
nested, metric targets are numbers or arrays of at most 100 numbers, dimension targets strings).
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest

from serving import cloud_signals as cs
from serving.metrics import LATENCY_BUCKETS, Metrics, RequestRecorder
from serving.settings import Platform, Settings, SignalMode
from tests.conftest import ServerProcess

_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
]  # fmt: skip
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer"},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": _NAME,
                            "Dimensions": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "maxItems": 9, "items": _NAME},
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {"Name": _NAME, "Unit": {"enum": UNITS}},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def check_emf(line: bytes) -> dict[str, Any]:
    """Parse one log line and check it is an EMF document; return it."""
    assert line.count(b"\n") == 1, "one JSON object per line"
    assert line.endswith(b"\n")
    document: dict[str, Any] = orjson.loads(line)
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                assert isinstance(document.get(key), str), f"dimension target {key}"
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100, metric["Name"]
            assert all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            ), f"metric target {metric['Name']}={value!r}"
    return document


def the_schema_rejects(document: dict[str, Any]) -> bool:
    try:
        check_emf(orjson.dumps(document) + b"\n")
    except (jsonschema.ValidationError, AssertionError):
        return True
    return False


SIGNALS = cs.IntervalSignals(
    requests=120,
    server_errors=3,
    client_errors=7,
    latency_p50_ms=1.25,
    latency_p99_ms=9.5,
    queue_rejections=0,
    drift_detected=1,
    ready=1,
)


def emf_line(signals: cs.IntervalSignals = SIGNALS) -> bytes:
    formatter = cs.emf_formatter("MLEndpoints", "churn-prod", "challenger", {"model": "churn"})
    return orjson.dumps(formatter(signals)) + b"\n"


def test_emf_line_is_valid_and_names_every_signal() -> None:
    document = check_emf(emf_line())
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "MLEndpoints"
    assert directive["Dimensions"] == [["EndpointName", "VariantName"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Requests": "Count",
        "ServerErrors": "Count",
        "ClientErrors": "Count",
        "LatencyP50": "Milliseconds",
        "LatencyP99": "Milliseconds",
        "QueueRejections": "Count",
        "DriftDetected": "None",
        "Ready": "None",
    }
    assert document["EndpointName"] == "churn-prod"
    assert document["VariantName"] == "challenger"
    assert (document["ServerErrors"], document["DriftDetected"]) == (3, 1)
    assert document["kind"] == cs.KIND
    assert document["model"] == "churn"
    assert abs(document["_aws"]["Timestamp"] - time.time() * 1000) < 5000


def test_unmeasured_signals_are_left_out_of_the_directive() -> None:
    """An idle interval has no latency and a server without a drift profile no drift value: a
    directive must not name a member that is not there."""
    idle = cs.IntervalSignals(0, 0, 0, None, None, 0, None, 1)
    document = check_emf(emf_line(idle))
    names = {m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"Requests", "ServerErrors", "ClientErrors", "QueueRejections", "Ready"}
    assert "LatencyP99" not in document
    assert "DriftDetected" not in document


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("_aws"),
        lambda d: d["_aws"].pop("Timestamp"),
        lambda d: d["_aws"].__setitem__("Timestamp", 1.5),
        lambda d: d["_aws"]["CloudWatchMetrics"][0].__setitem__("Namespace", ""),
        lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].__setitem__("Unit", "ms"),
        lambda d: d.pop("VariantName"),  # a dimension without its target
        lambda d: d.__setitem__("Requests", "120"),  # a metric target that is not a number
        lambda d: d.__setitem__("Requests", list(range(101))),
    ],
)
def test_the_check_catches_invalid_documents(breakage: Any) -> None:
    """The schema and rules in this file reject what the specification forbids (so that a
    passing line means something)."""
    document = orjson.loads(emf_line())
    breakage(document)
    assert the_schema_rejects(document)


def test_cloud_logging_entry_carries_the_same_members() -> None:
    entry = cs.cloud_logging_entry(SIGNALS, {"model": "churn", "variant": "challenger"})
    assert entry["severity"] == "WARNING"  # drift and 5xx
    assert entry["kind"] == cs.KIND
    assert {k: entry[k] for k in SIGNALS.members()} == SIGNALS.members()
    assert entry["message"] == "ml-endpoints-signals: 120 requests, 3 5xx, drift yes"
    quiet = cs.IntervalSignals(5, 0, 0, 1.0, 2.0, 0, 0, 1)
    assert cs.cloud_logging_entry(quiet, {})["severity"] == "INFO"


# -- what the numbers are -------------------------------------------------------------------------


def answer(recorder: RequestRecorder, seconds: float, status: int = 200) -> None:
    """One request through the server's own recorder (published at once: none in flight)."""
    recorder.end("sagemaker", seconds, 100, 20, status, admitted=False)


def test_reader_reports_deltas_of_a_workers_metrics() -> None:
    metrics = Metrics("m", "1", "v")
    recorder = RequestRecorder(metrics, ["sagemaker"])
    reader = cs.SignalReader(metrics.registry)
    assert reader.read().requests == 0
    for seconds in [0.001] * 98 + [0.2, 0.2]:
        answer(recorder, seconds)
    for status in (503, 400, 415):
        answer(recorder, 0.0001, status)
    recorder.reject()
    metrics.ready_child.set(1)
    first = reader.read()
    assert first.requests == 103  # 100 successes + 3 errors
    assert (first.server_errors, first.client_errors, first.queue_rejections) == (1, 2, 1)
    # rank 51.5 of 103, 3 fast errors and 98 requests in the 0.5-1 ms bucket: inside it
    assert 0.5 < (first.latency_p50_ms or 0) < 1
    assert 100 < (first.latency_p99_ms or 0) <= 250
    assert first.ready == 1
    assert first.drift_detected is None
    answer(recorder, 0.003)
    second = reader.read()
    assert (second.requests, second.server_errors, second.client_errors) == (1, 0, 0)
    assert second.latency_p99_ms == pytest.approx(2.5 + 2.5 * 0.99, abs=1e-6)
    assert reader.read().latency_p99_ms is None  # nothing observed since


def test_reader_sees_the_drift_gauge_registered_beside_the_metrics() -> None:
    from prometheus_client import Gauge

    from serving import contract

    metrics = Metrics("m", "1", "v")
    drift = Gauge(
        contract.DRIFT_DETECTED_METRIC, "drift", ["model", "version", "variant"],
        registry=metrics.registry,
    )  # fmt: skip
    reader = cs.SignalReader(metrics.registry)
    drift.labels("m", "1", "v").set(1)
    assert reader.read().drift_detected == 1


@pytest.mark.parametrize("quantile", [0.5, 0.9, 0.99])
def test_bucket_quantile_matches_prometheus_interpolation(quantile: float) -> None:
    """Against a direct computation of histogram_quantile's linear interpolation."""
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=-5, sigma=1.2, size=5000)
    bounds = [*LATENCY_BUCKETS, float("inf")]
    cumulative = {b: float(np.sum(values <= b)) for b in bounds}
    rank = quantile * len(values)
    upper = next(b for b in bounds if cumulative[b] >= rank)
    lower = max([0.0, *[b for b in bounds if b < upper]])
    below = cumulative.get(lower, 0.0)
    expected = lower + (upper - lower) * (rank - below) / (cumulative[upper] - below)
    assert cs.bucket_quantile(quantile, cumulative) == pytest.approx(expected)
    # and it lands in the right bucket of the true quantile
    true = float(np.quantile(values, quantile))
    assert lower <= true <= upper


def test_bucket_quantile_edges() -> None:
    assert cs.bucket_quantile(0.99, {}) is None
    assert cs.bucket_quantile(0.99, {1.0: 0.0, float("inf"): 0.0}) is None
    assert cs.bucket_quantile(0.99, {1.0: 0.0, 10.0: 0.0, float("inf"): 5.0}) == 10.0


# -- publishing ---------------------------------------------------------------------------------


def test_publisher_writes_a_line_per_interval_and_one_at_close() -> None:
    metrics = Metrics("m", "1", "v")
    lines: list[dict[str, Any]] = []
    written = threading.Event()

    def write(document: Any) -> None:
        lines.append(dict(document))
        written.set()

    formatter = cs.emf_formatter("NS", "e", "v", {})
    recorder = RequestRecorder(metrics, ["sagemaker"])
    publisher = cs.SignalPublisher(cs.SignalReader(metrics.registry), formatter, 0.05, write)
    for _ in range(5):
        answer(recorder, 0.001)
    assert written.wait(5)
    time.sleep(0.12)
    for _ in range(2):
        answer(recorder, 0.001)
    publisher.close()
    assert sum(line["Requests"] for line in lines) == 7  # each request counted once
    for line in lines:
        check_emf(orjson.dumps(line) + b"\n")


def test_a_failing_write_does_not_stop_publishing() -> None:
    calls: list[int] = []

    def flaky(_: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("stdout closed")

    publisher = cs.SignalPublisher(
        cs.SignalReader(Metrics("m", "1", "v").registry),
        cs.emf_formatter("N", "e", "v", {}),
        0.02,
        flaky,
    )
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    publisher.close()
    assert len(calls) >= 2


def test_lines_of_several_writers_never_interleave() -> None:
    """One ``write`` per line on a shared pipe: concurrent writers' lines stay whole."""
    read_end, write_end = os.pipe()
    document = orjson.loads(emf_line())
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: os.read(read_end, 65536), b""))
    )
    reader.start()
    writers = [
        threading.Thread(target=lambda: [cs.write_line(document, write_end) for _ in range(200)])
        for _ in range(4)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    os.close(write_end)
    reader.join()
    os.close(read_end)
    lines = b"".join(chunks).splitlines(keepends=True)
    assert len(lines) == 800
    for line in lines:
        check_emf(line)


# -- which server writes what ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "platform", "mode"),
    [
        ({}, None, SignalMode.OFF),  # Kubernetes, a laptop: Prometheus scrapes /metrics
        ({"ML_ENDPOINTS_SAGEMAKER_ENDPOINT": "churn"}, Platform.SAGEMAKER, SignalMode.EMF),
        ({"AIP_MODE": "PREDICTION"}, Platform.VERTEX, SignalMode.CLOUD_LOGGING),
        (
            {"ML_ENDPOINTS_SAGEMAKER_ENDPOINT": "churn", "ML_ENDPOINTS_SIGNALS_MODE": "off"},
            Platform.SAGEMAKER,
            SignalMode.OFF,
        ),
        ({"ML_ENDPOINTS_SIGNALS_MODE": "emf"}, None, SignalMode.EMF),  # anywhere, when asked
        (
            {"AIP_MODE": "PREDICTION", "ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS": "0"},
            Platform.VERTEX,
            SignalMode.OFF,  # invalid: the feature is off, the server serves
        ),
    ],
)
def test_the_platform_chooses_the_format_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    platform: Platform | None,
    mode: SignalMode,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.platform is platform
    assert cs.signal_mode(settings) is mode
    publisher = cs.create_publisher(settings, Metrics("m", "1", "v").registry)
    assert (publisher is None) is (mode is SignalMode.OFF)
    if publisher is not None:
        publisher.close()


def signal_lines(server: ServerProcess) -> list[bytes]:
    """The JSON signal lines in a server's stdout (its log holds stderr too)."""
    assert server.log_path is not None
    return [
        line + b"\n"
        for line in server.log_path.read_bytes().splitlines()
        if line.startswith(b"{") and cs.KIND.encode() in line
    ]


REQUESTS = 60
ROW = [1.0] * 30


def serve_requests(server: ServerProcess, path: str, body: Any) -> None:
    import httpx

    with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for index in range(REQUESTS):
            bad = index % 10 == 0  # 6 client errors
            response = client.post(server.url + path, json={"wrong": 1} if bad else body)
            assert response.status_code == (400 if bad else 200), response.text


def test_a_sagemaker_server_writes_emf_lines_that_add_up_over_workers(
    start_server: Any,
) -> None:
    """Two workers on SageMaker: every line is a valid EMF document for the endpoint and
    variant, and the Requests of all lines (the last interval written at shutdown) are exactly
    the requests served, whichever worker served them."""
    server = start_server(
        "--workers",
        "2",
        env={
            "ML_ENDPOINTS_SAGEMAKER_ENDPOINT": "churn-prod",
            "ML_ENDPOINTS_VARIANT": "challenger",
            "ML_ENDPOINTS_SIGNALS_NAMESPACE": "Churn",
            "ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS": "1",
            "ML_ENDPOINTS_DRAIN_SECONDS": "0",
        },
    )
    server.wait_workers_ready(2)
    serve_requests(server, "/invocations", [ROW])
    time.sleep(1.5)
    assert signal_lines(server), server.log()
    assert server.stop() == 0
    documents = [check_emf(line) for line in signal_lines(server)]
    directives = {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents}
    assert directives == {"Churn"}
    assert {(d["EndpointName"], d["VariantName"]) for d in documents} == {
        ("churn-prod", "challenger")
    }
    assert sum(d["Requests"] for d in documents) == REQUESTS
    assert sum(d["ClientErrors"] for d in documents) == REQUESTS // 10
    assert sum(d["ServerErrors"] for d in documents) == 0
    assert any(d.get("LatencyP99", 0) > 0 for d in documents)
    assert {d["Ready"] for d in documents} >= {1}


def test_a_vertex_server_writes_cloud_logging_lines(start_server: Any) -> None:
    server = start_server(
        env={
            "AIP_MODE": "PREDICTION",
            "AIP_ENDPOINT_ID": "4455",
            "AIP_DEPLOYED_MODEL_ID": "6677",
            "ML_ENDPOINTS_VARIANT": "champion",
            "ML_ENDPOINTS_SIGNALS_INTERVAL_SECONDS": "1",
            "ML_ENDPOINTS_DRAIN_SECONDS": "0",
        },
    )
    path = "/v1/endpoints/4455/deployedModels/6677:predict"
    serve_requests(server, path, {"instances": [ROW]})
    assert server.stop() == 0
    entries = [orjson.loads(line) for line in signal_lines(server)]
    assert entries, server.log()
    assert all("_aws" not in entry for entry in entries)
    assert {(e["variant"], e["deployed_model_id"], e["endpoint_id"]) for e in entries} == {
        ("champion", "6677", "4455")
    }
    assert sum(e["Requests"] for e in entries) == REQUESTS
    assert {e["severity"] for e in entries} <= {"INFO", "WARNING"}
