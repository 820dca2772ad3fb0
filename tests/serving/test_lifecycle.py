"""Life cycle of the real server process: readiness tells the truth while loading, warming up and
shutting down; SIGTERM drains and exits 0; a killed worker is replaced."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.demo import build_demo_model
from tests.conftest import ServerProcess

READINESS = ("/ping", "/health/ready", "/v2/health/ready")
SLOW_SECONDS = 5.0  # a request marked slow (first feature negative) takes this long
DRAIN_SECONDS = 2.5
#: model_fn may take its time; predict_fn fails on demand, or is slow for marked rows. Every
#: call takes a few milliseconds so that the server runs the model off the event loop.
HANDLER = """
import os
import time

import joblib
import numpy as np


def model_fn(model_dir):
    time.sleep(float(os.environ.get("TEST_LOAD_SECONDS", "0")))
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    if os.environ.get("TEST_PREDICT_ERROR"):
        raise RuntimeError(os.environ["TEST_PREDICT_ERROR"])
    rows = np.asarray(data)
    time.sleep(float(os.environ["TEST_SLOW_SECONDS"]) if rows[0, 0] < 0 else 0.003)
    return model.predict(rows)
"""

#: A new connection per request (so that any worker may take it), one client for all of them.
HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start(
    start_server: StartServer, demo_model_dir: Path, tmp_path: Path
) -> Callable[..., ServerProcess]:
    """Start the demo model behind :data:`HANDLER` with extra flags and environment."""
    handler = tmp_path / "lifecycle_handler.py"
    handler.write_text(HANDLER)

    def run(*args: str, wait_ready: bool = True, **env: str) -> ServerProcess:
        environment = {
            "TEST_SLOW_SECONDS": str(SLOW_SECONDS),
            "ML_ENDPOINTS_DRAIN_SECONDS": str(DRAIN_SECONDS),
            **env,
        }
        return start_server(
            "--model",
            str(demo_model_dir),
            "--handler",
            str(handler),
            *args,
            env=environment,
            wait_ready=wait_ready,
        )

    return run


@pytest.fixture(scope="module")
def row(demo_rows: list[list[float]]) -> list[float]:
    return demo_rows[0]


def status(server: ServerProcess, path: str) -> int:
    """Status of a GET on a fresh connection (any worker may answer)."""
    return HTTP.get(server.url + path, timeout=5).status_code


def predict(server: ServerProcess, row: list[float]) -> httpx.Response:
    return HTTP.post(server.url + "/invocations", json={"instances": [row]}, timeout=30)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def wait_listening(server: ServerProcess) -> None:
    def listening() -> bool:
        try:
            return status(server, "/health/live") == 200
        except httpx.TransportError:
            return False

    wait_for(listening, 30, "server listening")


def metric(server: ServerProcess, name: str, **labels: str) -> float:
    """The first sample called ``name`` whose labels include ``labels``."""
    text = HTTP.get(server.url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise KeyError(name)


def exit_code(server: ServerProcess, timeout: float) -> int:
    assert server.process is not None
    return server.process.wait(timeout)


class SlowRequest:
    """A prediction that stays in flight for :data:`SLOW_SECONDS`, sent on its own thread."""

    def __init__(self, server: ServerProcess, row: list[float]) -> None:
        self.response: httpx.Response | None = None
        self.finished = float("inf")
        self.error: Exception | None = None
        self.row = [-1.0, *row[1:]]
        self._thread = threading.Thread(target=self._send, args=(server, self.row), daemon=True)
        self._thread.start()
        wait_for(lambda: metric(server, "model_inflight_requests") == 1, 10, "request in flight")

    def _send(self, server: ServerProcess, marked: list[float]) -> None:
        try:
            self.response = predict(server, marked)
            self.finished = time.monotonic()
        except Exception as exc:  # reported by result()
            self.error = exc

    def result(self) -> httpx.Response:
        self._thread.join(SLOW_SECONDS + 20)
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


def worker_pids(server: ServerProcess) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            workers.add(child)
    return workers


def assert_not_ready_at_once(server: ServerProcess) -> None:
    """Within a moment of SIGTERM every readiness route of every worker says 503."""
    wait_for(lambda: all(status(server, p) == 503 for p in READINESS), 1.0, "not ready")
    for _ in range(3):
        assert [status(server, p) for p in READINESS] == [503, 503, 503]
    assert status(server, "/health/live") == 200


def test_not_ready_until_loaded_and_warmed(start: Callable[..., ServerProcess]) -> None:
    server = start(wait_ready=False, TEST_LOAD_SECONDS="2", ML_ENDPOINTS_DRAIN_SECONDS="0")
    wait_listening(server)
    assert [status(server, p) for p in READINESS] == [503, 503, 503]
    assert HTTP.get(server.url + "/health", timeout=5).json()["model_loaded"] is False
    wait_for(lambda: status(server, "/ping") == 200, 30, "ready after loading")
    assert [status(server, p) for p in READINESS] == [200, 200, 200]
    assert metric(server, "model_ready") == 1


def test_never_ready_when_the_warm_up_prediction_fails(start: Callable[..., ServerProcess]) -> None:
    server = start(
        wait_ready=False, TEST_PREDICT_ERROR="no weights", ML_ENDPOINTS_DRAIN_SECONDS="0"
    )
    wait_listening(server)
    wait_for(lambda: "failed" in HTTP.get(server.url + "/ping").text, 30, "load failure")
    for path in READINESS:
        response = HTTP.get(server.url + path, timeout=5)
        assert response.status_code == 503
        assert "RuntimeError: no weights" in response.json()["error"]
    assert metric(server, "model_ready") == 0


def test_sigterm_while_loading_exits_promptly(start: Callable[..., ServerProcess]) -> None:
    server = start(wait_ready=False, TEST_LOAD_SECONDS="60", ML_ENDPOINTS_DRAIN_SECONDS="0")
    wait_listening(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert exit_code(server, 10) == 0


def test_sigterm_drains_then_exits_0(start: Callable[..., ServerProcess], row: list[float]) -> None:
    server = start()
    assert server.process is not None
    slow = SlowRequest(server, row)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert_not_ready_at_once(server)
    health = HTTP.get(server.url + "/health", timeout=5)
    assert health.status_code == 503
    assert health.json() == {"status": "unhealthy", "model_loaded": True, "state": "draining"}
    assert time.monotonic() - signalled < DRAIN_SECONDS
    response = predict(server, row)  # sent in the drain window: served (after the slow one)
    assert response.status_code == 200, response.text
    finished = slow.result()  # still in flight when the drain window ended
    assert finished.status_code == 200, finished.text
    assert finished.json() == build_demo_model().predict([slow.row]).tolist()
    assert slow.finished - signalled > DRAIN_SECONDS  # it outlived the drain window
    assert exit_code(server, 20) == 0


def test_sigterm_with_two_workers(start: Callable[..., ServerProcess], row: list[float]) -> None:
    server = start("--workers", "2")
    wait_for(lambda: metric(server, "model_server_workers") == 2, 30, "two workers")
    wait_for(lambda: metric(server, "model_ready") == 1, 30, "both workers ready")
    assert server.process is not None
    slow = SlowRequest(server, row)
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert_not_ready_at_once(server)
    assert time.monotonic() - signalled < DRAIN_SECONDS
    with ThreadPoolExecutor(4) as pool:  # sent in the drain window, to either worker
        answers = list(pool.map(lambda _: predict(server, row).status_code, range(4)))
    assert answers == [200] * 4
    assert slow.result().status_code == 200
    assert slow.finished - signalled > DRAIN_SECONDS  # it outlived the drain window
    assert exit_code(server, 30) == 0


def test_a_killed_worker_is_replaced(start: Callable[..., ServerProcess], row: list[float]) -> None:
    server = start("--workers", "2", ML_ENDPOINTS_DRAIN_SECONDS="0")
    wait_for(lambda: len(worker_pids(server)) == 2, 30, "two worker processes")
    wait_for(lambda: metric(server, "model_ready") == 1, 30, "both workers ready")
    served_before = [predict(server, row).status_code for _ in range(10)]
    assert served_before == [200] * 10
    victim = min(worker_pids(server))
    os.kill(victim, signal.SIGKILL)
    answers = [predict(server, row) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert np.unique([a.json()[0] for a in answers]).tolist() == [0]

    def replaced() -> bool:
        pids = worker_pids(server)
        return len(pids) == 2 and victim not in pids

    wait_for(replaced, 30, "a replacement worker")
    wait_for(lambda: metric(server, "model_server_workers") == 2, 30, "two live workers")
    wait_for(lambda: metric(server, "model_ready") == 1, 30, "replacement ready")
    assert status(server, "/ping") == 200
    # the dead worker's counts are kept: every request is counted once, whoever served it
    counted = metric(server, "model_predictions_total", protocol="sagemaker", status="success")
    assert counted == 30
    assert server.process is not None
    assert server.process.poll() is None
