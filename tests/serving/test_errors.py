"""Bad input over real HTTP: exact status, a JSON ``{"error": ...}`` naming the problem, never a
5xx for a client's mistake, and a process that keeps serving."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.demo import build_demo_model
from tests.conftest import ServerProcess

LIMIT = 6 * 1024 * 1024  # SageMaker's payload limit, the default
ROW = [1.0] * 30
PREDICT_ROUTES = [
    "/invocations",
    "/predict",
    "/v1/models/model:predict",
    "/v1/endpoints/1/deployedModels/2:predict",
    "/v2/models/model/infer",
]
#: A handler whose model_fn takes its time, or fails, as the test environment says.
HANDLER = """
import os
import time

import joblib


def model_fn(model_dir):
    time.sleep(float(os.environ.get("TEST_LOAD_SECONDS", "0")))
    if os.environ.get("TEST_LOAD_ERROR"):
        raise RuntimeError(os.environ["TEST_LOAD_ERROR"])
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""

StartServer = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def log_before(demo_server: ServerProcess) -> int:
    """How much the shared server had logged before this module's first request."""
    return len(demo_server.log())


@pytest.fixture(scope="module")
def client(demo_server: ServerProcess, log_before: int) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.url, timeout=30) as http:
        yield http


@pytest.fixture
def handler(tmp_path: Path) -> Path:
    path = tmp_path / "slow_handler.py"
    path.write_text(HANDLER)
    return path


def wait_listening(server: ServerProcess, timeout: float = 30) -> None:
    """Wait until the server answers at all (liveness), not until it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(server.url + "/health/live", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"server not listening within {timeout} s:\n{server.log()}")


def error_of(response: httpx.Response, status: int) -> str:
    """The error message of a JSON error response with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert list(document) == ["error"]
    assert isinstance(document["error"], str)
    assert document["error"]
    return str(document["error"])


def post(client: httpx.Client, path: str, body: bytes, content_type: str) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": content_type})


def row_text(values: list[str]) -> bytes:
    return ",".join(values).encode()


@pytest.mark.parametrize(
    ("path", "body", "content_type", "expected"),
    [
        ("/invocations", b'{"instances": [[1, 2', "application/json", "body is not valid JSON"),
        ("/predict", b"{'features': []}", "application/json", "body is not valid JSON"),
        ("/invocations", b"", "application/json", "request body is empty"),
        ("/predict", b"", "application/json", "request body is empty"),
        ("/invocations", b"[" * 2000 + b"]" * 2000, "application/json", "depth limit exceeded"),
        (
            "/invocations",
            json.dumps({"instances": [ROW[:29]]}).encode(),
            "application/json",
            "expected 30 features per row, got 29",
        ),
        (
            "/predict",
            json.dumps({"features": ROW[:29]}).encode(),
            "application/json",
            "expected 30 features per row, got 29",
        ),
        (
            "/invocations",
            json.dumps({"instances": [ROW, ROW[:29]]}).encode(),
            "application/json",
            "rows differ in length: 'instances[1]' has 29 values, the first row 30",
        ),
        (
            "/invocations",
            json.dumps({"instances": [[*ROW[:29], "1.5"]]}).encode(),
            "application/json",
            "'instances[0][29]' must be a number, got a string '1.5'",
        ),
        (
            "/invocations",
            json.dumps({"instances": [[*ROW[:29], None]]}).encode(),
            "application/json",
            "row 0, feature 29 is missing (null/NaN); this model does not accept missing values",
        ),
        (
            "/invocations",
            row_text(["1"] * 29 + ["nan"]),
            "text/csv",
            "row 0, feature 29 is missing (null/NaN); this model does not accept missing values",
        ),
        (
            "/invocations",
            row_text(["1"] * 29 + [""]),
            "text/csv",
            "row 0, feature 29 is missing (null/NaN)",
        ),
        (
            "/invocations",
            row_text(["inf"] + ["1"] * 29),
            "text/csv",
            "row 0, feature 0 is infinite (or too large for a float)",
        ),
        (
            "/invocations",
            row_text(["1e999"] + ["1"] * 29),
            "text/csv",
            "row 0, feature 0 is infinite (or too large for a float)",
        ),
        (
            "/invocations",
            b"[" + b",".join([b"1"] * 29) + b",Infinity]",
            "application/json",
            "body is not valid JSON",
        ),
        (
            "/invocations",
            b"[" + b",".join([b"1"] * 29) + b",1e400]",
            "application/json",
            "number is infinity",
        ),
        (
            "/invocations",
            b"\xff\xfe1,2\n",
            "text/csv",
            "text/csv body is not valid UTF-8 at byte 0",
        ),
        (
            "/invocations",
            row_text([f"f{i}" for i in range(30)]) + b"\n" + row_text(["1"] * 30),
            "text/csv",
            "CSV line 1, column 1: 'f0' is not a number (send CSV without a header row)",
        ),
        ("/invocations", b"\n\n", "text/csv", "text/csv body has no rows"),
    ],
)
def test_bad_bodies_are_400(
    client: httpx.Client, path: str, body: bytes, content_type: str, expected: str
) -> None:
    assert expected in error_of(post(client, path, body, content_type), 400)


@pytest.mark.parametrize("path", ["/invocations", "/predict", "/v1/models/model:predict"])
def test_huge_finite_numbers_are_400(client: httpx.Client, path: str) -> None:
    """1e308 is a valid float, but the model's scaling overflows on it: the caller's fault."""
    key = "features" if path == "/predict" else "instances"
    body = json.dumps({key: [[1e308] * 30]}).encode()
    message = error_of(post(client, path, body, "application/json"), 400)
    assert "row 0" in message or "cannot use these rows" in message


def test_an_overflowing_request_fails_only_itself_when_batched(
    client: httpx.Client, demo_rows: list[list[float]]
) -> None:
    """Sent at once, good and bad requests may share a model call; only the bad ones fail."""
    rows = demo_rows[:8] + demo_rows[-8:]
    expected = build_demo_model().predict(np.asarray(rows)).tolist()
    bodies = [{"instances": [row]} for row in rows] + [{"instances": [[1e308] * 30]}] * 16

    def send(document: dict[str, Any]) -> httpx.Response:
        return client.post("/invocations", json=document)

    with ThreadPoolExecutor(16) as pool:
        for _ in range(3):
            responses = list(pool.map(send, bodies))
            good, bad = responses[: len(rows)], responses[len(rows) :]
            assert [r.json()[0] for r in good] == expected
            assert {r.status_code for r in bad} == {400}


def test_pickled_npy_is_400(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    message = error_of(post(client, "/invocations", buffer.getvalue(), "application/x-npy"), 400)
    assert "object arrays are refused" in message


def test_npy_header_claiming_a_huge_array_is_400(client: httpx.Client) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((2, 30)))
    forged = buffer.getvalue().replace(b"(2, 30)", b"(4000000000, 30)")
    message = error_of(post(client, "/invocations", forged, "application/x-npy"), 400)
    assert "shape [4000000000, 30] of float64 needs 960000000000 bytes" in message


@pytest.mark.parametrize(
    ("path", "content_type", "allowed"),
    [
        ("/invocations", "application/xml", "application/json, text/csv, application/x-npy"),
        ("/invocations", "text/plain", "application/jsonlines"),
        ("/predict", "text/csv", "application/json"),
        ("/v1/endpoints/1/deployedModels/2:predict", "text/csv", "application/json"),
        ("/v1/models/model:predict", "application/x-npy", "application/json"),
    ],
)
def test_wrong_content_type_is_415(
    client: httpx.Client, path: str, content_type: str, allowed: str
) -> None:
    body = json.dumps({"instances": [ROW], "features": ROW}).encode()
    message = error_of(post(client, path, body, content_type), 415)
    assert repr(content_type) in message
    assert allowed in message


def test_body_over_the_limit_with_content_length_is_413(client: httpx.Client) -> None:
    body = b"[" + b"1.0," * (LIMIT // 4) + b"1.0]"
    message = error_of(post(client, "/invocations", body, "application/json"), 413)
    assert f"body of {len(body)} bytes is over the limit of {LIMIT} bytes" in message
    assert client.get("/ping").status_code == 200  # the connection and server are fine


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    chunk = b"1.0," * 16384

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(LIMIT // len(chunk) + 2):
            yield chunk
        yield b"1.0]"

    request = client.build_request(
        "POST", "/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    message = error_of(client.send(request), 413)
    assert f"over the limit of {LIMIT} bytes" in message


def test_chunked_body_under_the_limit_is_served(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        yield json.dumps(ROW).encode()
        yield b"]}"

    response = client.post(
        "/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_unknown_route_is_404(client: httpx.Client) -> None:
    assert "no route '/v3/predict'" in error_of(client.get("/v3/predict"), 404)
    assert "no route" in error_of(client.post("/invocations/extra", content=b"{}"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/invocations", "POST"),
        ("DELETE", "/ping", "GET"),
        ("POST", "/health", "GET"),
        ("PUT", "/v2/models/model/infer", "POST"),
    ],
)
def test_wrong_method_is_405(client: httpx.Client, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    message = error_of(response, 405)
    assert f"{method} is not allowed on {path}; use {allowed}" in message
    assert response.headers["allow"] == allowed


def test_503_with_retry_after_while_loading(
    start_server: StartServer, demo_model_dir: Path, handler: Path
) -> None:
    server = start_server(
        "--model",
        str(demo_model_dir),
        "--handler",
        str(handler),
        env={"TEST_LOAD_SECONDS": "30", "ML_ENDPOINTS_DRAIN_SECONDS": "0"},
        wait_ready=False,
    )
    wait_listening(server)
    with httpx.Client(base_url=server.url, timeout=5) as http:
        assert http.get("/health/live").status_code == 200
        for path in ("/ping", "/health/ready", "/v2/health/ready", "/v2/models/model/ready"):
            response = http.get(path)
            assert "model is loading" in error_of(response, 503)
            assert int(response.headers["retry-after"]) > 0
        health = http.get("/health")
        assert health.status_code == 503
        assert health.json()["model_loaded"] is False
        assert int(health.headers["retry-after"]) > 0
        response = http.post("/invocations", json={"instances": [ROW]})
        assert "model is loading" in error_of(response, 503)
        assert int(response.headers["retry-after"]) > 0


def test_503_with_the_reason_when_the_model_failed_to_load(
    start_server: StartServer, demo_model_dir: Path, handler: Path
) -> None:
    server = start_server(
        "--model",
        str(demo_model_dir),
        "--handler",
        str(handler),
        env={"TEST_LOAD_ERROR": "weights are corrupt", "ML_ENDPOINTS_DRAIN_SECONDS": "0"},
        wait_ready=False,
    )
    wait_listening(server)
    reason = "model failed to load: RuntimeError: weights are corrupt"
    with httpx.Client(base_url=server.url, timeout=5) as http:
        deadline = time.monotonic() + 30
        while "failed" not in http.get("/ping").text and time.monotonic() < deadline:
            time.sleep(0.05)
        for path in ("/ping", "/health/ready", "/v2/health/ready"):
            response = http.get(path)
            assert reason in error_of(response, 503)
            assert "retry-after" in response.headers
        response = http.post("/invocations", json={"instances": [ROW]})
        assert reason in error_of(response, 503)
        assert "retry-after" in response.headers
        assert http.get("/health").json()["model_loaded"] is False
    assert server.process is not None
    assert server.process.poll() is None  # still answering; the platform decides what to do


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=40) | st.dictionaries(st.text(max_size=8), children)
    ),
    max_leaves=80,
)
DOCUMENTS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"instances": JSON_VALUES}),
    st.fixed_dictionaries({"features": JSON_VALUES}),
    st.fixed_dictionaries({"instances": JSON_VALUES, "parameters": JSON_VALUES}),
    st.fixed_dictionaries(
        {
            "inputs": st.lists(
                st.dictionaries(
                    st.sampled_from(["name", "shape", "datatype", "data", "parameters"]),
                    JSON_VALUES,
                )
            )
        },
        optional={"outputs": JSON_VALUES, "id": JSON_VALUES, "parameters": JSON_VALUES},
    ),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(PREDICT_ROUTES), document=DOCUMENTS)
def test_no_json_document_causes_a_5xx(client: httpx.Client, path: str, document: Any) -> None:
    body = json.dumps(document).encode()
    response = post(client, path, body, "application/json")
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        error_of(response, 400)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PREDICT_ROUTES),
    content_type=st.sampled_from(
        ["application/json", "text/csv", "application/x-npy", "application/jsonlines"]
    ),
    body=st.binary(max_size=300)
    | st.lists(st.sampled_from(["1", "-2.5", "", "nan", "x", "1e400", ",", "\n"]), max_size=90).map(
        lambda cells: ",".join(cells).encode()
    ),
)
def test_no_byte_body_causes_a_5xx(
    client: httpx.Client, path: str, content_type: str, body: bytes
) -> None:
    response = post(client, path, body, content_type)
    assert response.status_code in (200, 400, 415), response.text


def test_the_server_survived_everything(
    demo_server: ServerProcess, client: httpx.Client, log_before: int
) -> None:
    assert demo_server.process is not None
    assert demo_server.process.poll() is None
    assert client.get("/ping").status_code == 200
    assert "Traceback" not in demo_server.log()[log_before:]
