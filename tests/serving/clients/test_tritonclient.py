"""``tritonclient.http`` against the server: binary and JSON tensors, FP32 and FP64, and the
request/response compression Triton's client offers.

tritonclient (``tritonclient/http/_client.py``, ``InferenceServerClient.infer``) compresses the
request body with ``gzip.compress``/``zlib.compress`` and says so in ``Content-Encoding`` when
``request_compression_algorithm`` is set, and sends ``Accept-Encoding`` for
``response_compression_algorithm`` (it decodes a compressed answer, and reads a plain one as is).
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import ServerProcess

MODEL = "model"


@pytest.fixture(scope="module")
def client(demo_server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(demo_server.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]]) -> np.ndarray:
    return np.asarray(demo_rows)[[0, 1, 2, -3, -2, -1]]


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_with_request_and_response_compression(
    client: triton.InferenceServerClient,
    reference: Any,
    rows: np.ndarray,
    compression: str | None,
    binary: bool,
    datatype: str,
) -> None:
    data = rows.astype(np.float32 if datatype == "FP32" else np.float64)
    tensor = triton.InferInput("input-0", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(n, binary_data=binary) for n in ("predict", "predict_proba")
    ]
    result = client.infer(
        MODEL,
        [tensor],
        outputs=outputs,
        request_compression_algorithm=compression,
        response_compression_algorithm=compression,
    )
    model_rows = data.astype(np.float64)
    assert result.as_numpy("predict").tolist() == reference.predict(model_rows).tolist()
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), reference.predict_proba(model_rows), rtol=0, atol=1e-9
    )


def _post(server: ServerProcess, path: str, body: bytes, encoding: str) -> httpx.Response:
    headers = {"content-type": "application/json", "content-encoding": encoding}
    return httpx.post(server.url + path, content=body, headers=headers, timeout=10)


def _infer_body(rows: np.ndarray) -> bytes:
    document = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
@pytest.mark.parametrize("path", ["/v2/models/model/infer", "/invocations"])
def test_compressed_bodies_on_every_prediction_route(
    demo_server: ServerProcess,
    reference: Any,
    rows: np.ndarray,
    encoding: str,
    compress: Any,
    path: str,
) -> None:
    body = (
        _infer_body(rows)
        if path.startswith("/v2")
        else json.dumps({"instances": rows.tolist()}).encode()
    )
    response = _post(demo_server, path, compress(body), encoding)
    assert response.status_code == 200, response.text
    expected = reference.predict(rows).tolist()
    document = response.json()
    if path.startswith("/v2"):
        assert document["outputs"][0]["data"] == expected
    else:
        assert document == expected  # SageMaker's default JSON answer: a bare list


def test_unsupported_encoding_is_415_naming_the_supported_ones(
    demo_server: ServerProcess, rows: np.ndarray
) -> None:
    response = _post(demo_server, "/v2/models/model/infer", _infer_body(rows), "br")
    assert response.status_code == 415
    message = response.json()["error"]
    assert "'br'" in message
    assert "gzip" in message
    assert "deflate" in message


def test_decoded_size_is_held_to_the_body_limit(demo_server: ServerProcess) -> None:
    """A 7 MB body of spaces gzips to a few KB: the 6 MB limit applies to what it decodes to."""
    bomb = gzip.compress(b"[" + b" " * (7 * 1024 * 1024) + b"]")
    assert len(bomb) < 64 * 1024
    response = _post(demo_server, "/invocations", bomb, "gzip")
    assert response.status_code == 413
    assert "decoded" in response.json()["error"]


def test_corrupt_compressed_body_is_400(demo_server: ServerProcess, rows: np.ndarray) -> None:
    truncated = gzip.compress(_infer_body(rows))[:-12]
    response = _post(demo_server, "/v2/models/model/infer", truncated, "gzip")
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]
