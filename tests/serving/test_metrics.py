"""``/metrics`` over real HTTP: valid exposition (``promtool``), the documented series and labels,
and counts that add up across worker processes whichever worker answers the scrape."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess

LABELS = {"model": "breast-cancer", "version": "7", "variant": "canary"}
ROW = [1.0] * 30
SUCCESSES = 40
FAILURES = 12
KUBERNETES = 6
SCRAPES = 8

#: A new connection per request (so that any worker may take it), one client for all of them.
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(url: str) -> tuple[str, list[Sample]]:
    """One scrape on a fresh connection (so that any worker may answer it)."""
    response = HTTP.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    ]
    return response.text, samples


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The one sample called ``name`` whose labels include ``labels``."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def promtool_findings(exposition: str) -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; make system-deps)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return (result.stdout + result.stderr).strip() if result.returncode else ""


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two worker processes with model, version and variant labels, after a known workload."""
    server = ServerProcess(
        ["--workers", "2"],
        {
            "MODEL_NAME": LABELS["model"],
            "MODEL_VERSION": LABELS["version"],
            "ML_ENDPOINTS_VARIANT": LABELS["variant"],
            "ML_ENDPOINTS_DRAIN_SECONDS": "0",
        },
    ).start(tmp_path_factory.mktemp("metrics"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both workers loaded, not only the one /ping reached
        _, samples = scrape(server.url)
        if value(samples, "model_ready") == 1 and value(samples, "model_server_workers") == 2:
            break
        time.sleep(0.1)
    else:
        raise TimeoutError(f"two ready workers not reported:\n{server.log()}")
    for i in range(SUCCESSES):  # a new connection per request spreads them over the workers
        response = HTTP.post(server.url + "/invocations", json={"instances": [ROW] * (i % 3 + 1)})
        assert response.status_code == 200
    for _ in range(FAILURES):
        assert HTTP.post(server.url + "/invocations", json=[ROW[:29]]).status_code == 400
    for _ in range(KUBERNETES):
        assert HTTP.post(server.url + "/predict", json={"features": ROW}).status_code == 200
    yield server
    server.stop()


def test_single_worker_exposition_passes_promtool(demo_server: ServerProcess) -> None:
    assert HTTP.post(demo_server.url + "/invocations", json=[ROW]).status_code == 200
    exposition, _ = scrape(demo_server.url)
    assert promtool_findings(exposition) == ""


def test_every_metric_the_contract_names_is_exported(demo_server: ServerProcess) -> None:
    """Dashboards, alert rules, the canary and the cloud signals query the names in
    ``serving.contract``: each is a metric family of the server's exposition (per-feature drift
    gauges have no series before the first report, but their family is there)."""
    from serving import contract

    named = {value for key, value in vars(contract).items() if key.endswith("_METRIC")}
    assert len(named) >= 12
    exposition, _ = scrape(demo_server.url)
    families = {family.name for family in text_string_to_metric_families(exposition)}
    assert named <= families, sorted(named - families)


def test_multi_worker_exposition_passes_promtool(two_workers: ServerProcess) -> None:
    exposition, _ = scrape(two_workers.url)
    assert promtool_findings(exposition) == ""


def test_counters_add_up_over_workers_on_every_scrape(
    two_workers: ServerProcess,
) -> None:
    url = two_workers.url
    for _ in range(SCRAPES):
        _, samples = scrape(url)
        sagemaker = {**LABELS, "protocol": "sagemaker"}
        assert value(samples, "model_predictions_total", **sagemaker, status="success") == (
            SUCCESSES
        )
        assert value(samples, "model_predictions_total", **sagemaker, status="error") == FAILURES
        kubernetes = {**LABELS, "protocol": "kubernetes"}
        assert value(samples, "model_predictions_total", **kubernetes, status="success") == (
            KUBERNETES
        )
        assert value(samples, "model_prediction_errors_total", **sagemaker, code="400") == (
            FAILURES
        )
        assert (
            value(samples, "model_prediction_rows_total", **LABELS)
            == sum(i % 3 + 1 for i in range(SUCCESSES)) + KUBERNETES
        )
        count = SUCCESSES + FAILURES
        assert value(samples, "model_prediction_latency_seconds_count", **sagemaker) == count
        assert value(samples, "model_request_size_bytes_count", **sagemaker) == count
        assert value(samples, "model_response_size_bytes_count", **sagemaker) == count
        assert value(samples, "model_request_size_bytes_sum", **sagemaker) > 0


def test_gauges_and_labels(two_workers: ServerProcess) -> None:
    _, samples = scrape(two_workers.url)
    assert value(samples, "model_inflight_requests", **LABELS) == 0
    assert value(samples, "model_load_seconds", **LABELS) > 0
    assert value(samples, "model_ready", **LABELS) == 1
    assert value(samples, "model_server_workers", **LABELS) == 2
    latency = value(samples, "model_prediction_latency_seconds_sum", **LABELS, protocol="sagemaker")
    assert 0 < latency < 60
    for sample in samples:
        if sample.name.startswith("model_"):
            assert LABELS.items() <= sample.labels.items(), sample


@pytest.mark.parametrize("count", [8, 500])  # the bulk path (fewer go through observe)
def test_bulk_histogram_updates_equal_one_observe_per_value(count: int) -> None:
    """The recorder publishes histograms in bulk; the exposition must be what ``observe`` gives
    (values on, between and beyond the bucket bounds)."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from serving.metrics import LATENCY_BUCKETS, observe_many

    rng = random.Random(count)
    bounds = list(LATENCY_BUCKETS)
    values = [
        rng.choice([*bounds, rng.uniform(0, 0.02), rng.uniform(0, 100)]) for _ in range(count)
    ]
    expositions = []
    for bulk in (False, True):
        registry = CollectorRegistry()
        histogram = Histogram("h", "h", ["p"], buckets=LATENCY_BUCKETS, registry=registry)
        child = histogram.labels("x")
        if bulk:
            observe_many(child, values)
        else:
            for value in values:
                child.observe(value)
        expositions.append(generate_latest(registry).decode())
    plain, bulk_text = expositions
    assert _without_sum(bulk_text) == _without_sum(plain)
    assert _sum(bulk_text) == pytest.approx(_sum(plain), rel=1e-12)


def _without_sum(exposition: str) -> list[str]:
    return [line for line in exposition.splitlines() if not line.startswith("h_sum")]


def _sum(exposition: str) -> float:
    return next(
        float(line.split()[-1]) for line in exposition.splitlines() if line.startswith("h_sum")
    )
