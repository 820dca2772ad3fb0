"""SageMaker's contract over real HTTP: ``/ping``, ``/invocations`` in every content type.

Answers are encoded as SageMaker's own framework containers encode them
(aws/sagemaker-inference-toolkit ``src/sagemaker_inference/encoder.py``): JSON as a bare list
(``json.dumps(array.tolist())``), ``.npy`` as ``np.save`` bytes, CSV one row per line; the
default ``Accept`` is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else JSON
(aws/sagemaker-containers ``_env.py``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ServerProcess

ROWS = 12  # rows of the breast-cancer data sent per request


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]]) -> np.ndarray:
    """Rows from both classes (the data set starts with malignant cases)."""
    data = np.asarray(demo_rows)
    return np.concatenate([data[:6], data[-6:]])


@pytest.fixture(scope="module")
def client(demo_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def bind_to_port_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Started as SageMaker starts it: ``serve`` with no ``--port``, the port in the environment;
    returns class probabilities (``ML_ENDPOINTS_OUTPUT=probabilities``) in the other JSON shape
    (``{"predictions": [...]}``), CSV unless asked otherwise."""
    server = ServerProcess([], flags=False)
    server.env |= {
        "SAGEMAKER_BIND_TO_PORT": str(server.port),
        "ML_ENDPOINTS_OUTPUT": "probabilities",
        "ML_ENDPOINTS_SAGEMAKER_JSON": "predictions",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
        "ML_ENDPOINTS_DRAIN_SECONDS": "0",
    }
    server.start(tmp_path_factory.mktemp("bind-to-port"))
    yield server
    server.stop()


def post(
    client: httpx.Client, body: bytes, content_type: str, accept: str | None = None
) -> httpx.Response:
    headers = {"content-type": content_type}
    if accept is not None:
        headers["accept"] = accept
    return client.post("/invocations", content=body, headers=headers)


def npy(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_ping_answers_200_when_ready(client: httpx.Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 2  # SageMaker's limit for a health answer


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("instances", lambda r: json.dumps({"instances": r.tolist()})),
        ("features rows", lambda r: json.dumps({"features": r.tolist()})),
        ("bare list of rows", lambda r: json.dumps(r.tolist())),
    ],
)
def test_json_bodies_give_sklearn_labels(
    client: httpx.Client, reference: Any, rows: np.ndarray, name: str, encode: Any
) -> None:
    response = post(client, encode(rows).encode(), "application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == reference.predict(rows).tolist()  # a bare list
    assert len(set(response.json())) == 2  # both classes really occur


@pytest.mark.parametrize("body", ["features", "flat"])
def test_single_row_json(client: httpx.Client, reference: Any, rows: np.ndarray, body: str) -> None:
    row = rows[0].tolist()
    document = {"features": row} if body == "features" else row
    response = post(client, json.dumps(document).encode(), "application/json; charset=utf-8")
    assert response.status_code == 200, response.text
    assert response.json() == reference.predict(rows[:1]).tolist()


def test_csv_body(client: httpx.Client, reference: Any, rows: np.ndarray) -> None:
    body = "\n".join(",".join(repr(v) for v in row) for row in rows.tolist()) + "\n"
    response = post(client, body.encode(), "text/csv")
    assert response.status_code == 200, response.text
    assert response.json() == reference.predict(rows).tolist()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_npy_body(client: httpx.Client, reference: Any, rows: np.ndarray, dtype: Any) -> None:
    array = rows.astype(dtype)
    response = post(client, npy(array), "application/x-npy")
    assert response.status_code == 200, response.text
    expected = reference.predict(array.astype(np.float64)).tolist()
    assert response.json() == expected


def test_pickled_npy_is_refused_and_never_unpickled(client: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    body = npy(np.array([Trap(), 1.0], dtype=object), allow_pickle=True)
    response = post(client, body, "application/x-npy")
    assert response.status_code == 400
    error = response.json()["error"]
    assert "object arrays are refused" in error
    assert "numeric array" in error
    assert not marker.exists()


def test_jsonlines_body(client: httpx.Client, reference: Any, rows: np.ndarray) -> None:
    lines = [json.dumps(rows[0].tolist()), json.dumps({"features": rows[-1].tolist()})]
    response = post(client, "\n".join(lines).encode(), "application/jsonlines")
    assert response.status_code == 200, response.text
    assert response.json() == reference.predict(rows[[0, -1]]).tolist()


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/jsonlines", "application/jsonlines"),
        ("application/x-npy", "application/x-npy"),
        ("text/html, text/csv;q=0.9, */*;q=0.1", "text/csv"),
        ("application/*;q=0.5, application/jsonlines", "application/jsonlines"),
    ],
)
def test_accept_selects_the_output_encoding(
    client: httpx.Client,
    reference: Any,
    rows: np.ndarray,
    accept: str | None,
    content_type: str,
) -> None:
    response = post(client, json.dumps(rows.tolist()).encode(), "application/json", accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    expected = reference.predict(rows).tolist()
    if content_type == "application/json":
        assert response.json() == expected
    elif content_type == "application/x-npy":
        answer = np.load(io.BytesIO(response.content), allow_pickle=False)
        assert answer.dtype == np.int64
        assert answer.tolist() == expected
    elif content_type == "text/csv":
        assert response.text.splitlines() == [str(label) for label in expected]
    else:
        assert [json.loads(line) for line in response.text.splitlines()] == expected


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/csv;q=0"])
def test_unsupported_accept_is_406(client: httpx.Client, rows: np.ndarray, accept: str) -> None:
    response = post(client, json.dumps(rows.tolist()).encode(), "application/json", accept)
    assert response.status_code == 406
    error = response.json()["error"]
    assert repr(accept) in error
    assert "application/json, text/csv, application/x-npy, application/jsonlines" in error


def test_custom_attributes_and_unknown_headers_are_ignored(
    client: httpx.Client, reference: Any, rows: np.ndarray
) -> None:
    response = client.post(
        "/invocations",
        content=json.dumps({"instances": rows.tolist()}),
        headers=[
            (b"content-type", b"application/json"),
            (b"X-Amzn-SageMaker-Custom-Attributes", b"trace_id=abc," + b"x" * 1000),
            (b"X-Amzn-SageMaker-Target-Variant", b"canary"),
            (b"X-Something-Else", "\u00e9t\u00e9".encode()),  # not even ASCII
        ],
    )
    assert response.status_code == 200, response.text
    assert response.json() == reference.predict(rows).tolist()


def test_bind_to_port_without_port_flag(bind_to_port_server: ServerProcess) -> None:
    response = httpx.get(f"http://127.0.0.1:{bind_to_port_server.port}/ping", timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["application/json", "text/csv", "application/x-npy"])
def test_probabilities_output_equals_predict_proba(
    bind_to_port_server: ServerProcess,
    reference: Any,
    rows: np.ndarray,
    content_type: str,
) -> None:
    body = {
        "application/json": json.dumps({"instances": rows.tolist()}).encode(),
        "text/csv": "\n".join(",".join(map(repr, r)) for r in rows.tolist()).encode(),
        "application/x-npy": npy(rows),
    }[content_type]
    response = httpx.post(
        bind_to_port_server.url + "/invocations",
        content=body,
        headers={"content-type": content_type, "accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    served = np.asarray(response.json()["predictions"])  # the configured other shape
    np.testing.assert_allclose(served, reference.predict_proba(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_default_accept_comes_from_sagemaker_default_invocations_accept(
    bind_to_port_server: ServerProcess, reference: Any, rows: np.ndarray, accept: str | None
) -> None:
    headers = {"content-type": "application/json"} | ({"accept": accept} if accept else {})
    response = httpx.post(
        bind_to_port_server.url + "/invocations",
        content=json.dumps(rows.tolist()),
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv"
    served = np.loadtxt(io.StringIO(response.text), delimiter=",", ndmin=2)
    np.testing.assert_allclose(served, reference.predict_proba(rows), rtol=0, atol=1e-6)


def test_probabilities_as_npy(
    bind_to_port_server: ServerProcess, reference: Any, rows: np.ndarray
) -> None:
    """What the SageMaker SDK's NumpyDeserializer reads (SKLearnPredictor's default)."""
    response = httpx.post(
        bind_to_port_server.url + "/invocations",
        content=npy(rows),
        headers={"content-type": "application/x-npy", "accept": "application/x-npy"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npy"
    served = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert served.shape == (len(rows), 2)
    np.testing.assert_allclose(served, reference.predict_proba(rows), rtol=0, atol=1e-6)


def test_probabilities_as_csv(
    bind_to_port_server: ServerProcess, reference: Any, rows: np.ndarray
) -> None:
    response = httpx.post(
        bind_to_port_server.url + "/invocations",
        json={"instances": rows.tolist()},
        headers={"accept": "text/csv"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    served = np.loadtxt(io.StringIO(response.text), delimiter=",", ndmin=2)
    np.testing.assert_allclose(served, reference.predict_proba(rows), rtol=0, atol=1e-6)
