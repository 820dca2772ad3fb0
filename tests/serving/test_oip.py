"""Open Inference Protocol (KServe V2) spoken by an independent client, ``tritonclient.http``,
and KServe V1 over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import ServerProcess

MODEL = "model"  # the server's default model name and version
VERSION = "1"


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]]) -> np.ndarray:
    data = np.asarray(demo_rows)
    return np.concatenate([data[:4], data[-4:]])


@pytest.fixture(scope="module")
def client(demo_server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(f"127.0.0.1:{demo_server.port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def http(demo_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.url, timeout=10) as client:
        yield client


def test_server_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "ml-endpoints"
    assert isinstance(metadata["version"], str)
    assert isinstance(metadata["extensions"], list)


@pytest.mark.parametrize("version", ["", VERSION])
def test_model_metadata_and_ready(client: triton.InferenceServerClient, version: str) -> None:
    assert client.is_model_ready(MODEL, version)
    metadata = client.get_model_metadata(MODEL, version)
    assert metadata["name"] == MODEL
    assert metadata["versions"] == [VERSION]
    assert isinstance(metadata["platform"], str)
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 30]}]
    outputs = {o["name"]: o for o in metadata["outputs"]}
    assert outputs["predict"]["datatype"] == "INT64"
    assert outputs["predict_proba"] == {
        "name": "predict_proba",
        "datatype": "FP64",
        "shape": [-1, 2],
    }


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_all_outputs(
    client: triton.InferenceServerClient,
    reference: Any,
    rows: np.ndarray,
    binary: bool,
    datatype: str,
) -> None:
    data = rows.astype(np.float32 if datatype == "FP32" else np.float64)
    tensor = triton.InferInput("input-0", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("predict", "predict_proba")
    ]
    result = client.infer(MODEL, [tensor], outputs=outputs, request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == MODEL
    assert response["model_version"] == VERSION
    expected_input = data.astype(np.float64)
    np.testing.assert_array_equal(result.as_numpy("predict"), reference.predict(expected_input))
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"),
        reference.predict_proba(expected_input),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("name", ["predict", "predict_proba"])
def test_only_the_requested_output_is_returned(
    client: triton.InferenceServerClient, reference: Any, rows: np.ndarray, name: str
) -> None:
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    result = client.infer(
        MODEL, [tensor], model_version=VERSION, outputs=[triton.InferRequestedOutput(name)]
    )
    assert [o["name"] for o in result.get_response()["outputs"]] == [name]
    expected = getattr(reference, name)(rows)
    np.testing.assert_allclose(result.as_numpy(name), expected, rtol=0, atol=1e-6)


def test_default_outputs_without_request(
    client: triton.InferenceServerClient, reference: Any, rows: np.ndarray
) -> None:
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=False)
    result = client.infer(MODEL, [tensor])
    np.testing.assert_array_equal(result.as_numpy("predict"), reference.predict(rows))


def test_unknown_output_is_400(client: triton.InferenceServerClient, rows: np.ndarray) -> None:
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor], outputs=[triton.InferRequestedOutput("logits")])
    assert info.value.status() == "400"
    assert "unknown output 'logits'" in info.value.message()
    assert "predict_proba" in info.value.message()


def test_unknown_model_is_404(client: triton.InferenceServerClient, rows: np.ndarray) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope")
    assert info.value.status() == "404"
    assert "'nope' not found" in info.value.message()
    assert not client.is_model_ready("nope")
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException) as info:
        client.infer("nope", [tensor])
    assert info.value.status() == "404"


def test_unknown_version_is_404(client: triton.InferenceServerClient, rows: np.ndarray) -> None:
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata(MODEL, "7")
    assert info.value.status() == "404"
    assert "no version '7'" in info.value.message()
    assert not client.is_model_ready(MODEL, "7")
    tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor], model_version="7")
    assert info.value.status() == "404"


def test_wrong_width_is_400(client: triton.InferenceServerClient, rows: np.ndarray) -> None:
    data = rows[:, :29]
    tensor = triton.InferInput("input-0", list(data.shape), "FP64")
    tensor.set_data_from_numpy(np.ascontiguousarray(data))
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor])
    assert info.value.status() == "400"
    assert "expected 30 features per row, got 29" in info.value.message()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"datatype": "BYTES"}, "datatype BYTES is not supported"),
        ({"datatype": "FLOAT"}, "datatype 'FLOAT' is not one of BOOL"),
        ({"datatype": ["FP64"]}, "'datatype' must be one of"),
        ({"shape": [2, 30]}, "shape [2, 30] needs 60 values, 'data' has 30"),
        ({"shape": [1, 2, 15]}, "'shape' must be [features] or [rows, features]"),
        ({"data": ["a"] * 30}, "'data' must be (nested lists of) FP64 values"),
        ({"parameters": [1]}, "'parameters' must be an object, got a list"),
    ],
)
def test_bad_tensors_are_400(
    http: httpx.Client, rows: np.ndarray, change: dict[str, Any], expected: str
) -> None:
    tensor = {"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": rows[0].tolist()}
    response = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor | change]})
    assert response.status_code == 400
    assert expected in response.json()["error"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"id": 5}, "'id' must be a string, got a number"),
        ({"parameters": "fast"}, "'parameters' must be an object, got a string"),
        ({"outputs": [{"name": "predict", "parameters": []}]}, "'outputs[0].parameters'"),
        ({"outputs": "predict"}, "'outputs' must be a list"),
    ],
)
def test_bad_request_fields_are_400(
    http: httpx.Client, rows: np.ndarray, extra: dict[str, Any], expected: str
) -> None:
    tensor = {"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": rows[0].tolist()}
    response = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor], **extra})
    assert response.status_code == 400
    assert expected in response.json()["error"]


def test_binary_header_length_outside_body_is_400(http: httpx.Client) -> None:
    response = http.post(
        f"/v2/models/{MODEL}/infer",
        content=b'{"inputs": []}',
        headers={"Inference-Header-Content-Length": "999"},
    )
    assert response.status_code == 400
    assert "Inference-Header-Content-Length 999 is outside the body" in response.json()["error"]


def test_v1_model_status(http: httpx.Client) -> None:
    response = http.get(f"/v1/models/{MODEL}")
    assert response.status_code == 200
    assert response.json() == {"name": MODEL, "ready": True}
    response = http.get("/v1/models/nope")
    assert response.status_code == 404
    assert "'nope' not found" in response.json()["error"]


def test_v1_predict(http: httpx.Client, reference: Any, rows: np.ndarray) -> None:
    response = http.post(f"/v1/models/{MODEL}:predict", json={"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": reference.predict(rows).tolist()}


def test_v1_predict_unknown_model_is_404(http: httpx.Client, rows: np.ndarray) -> None:
    response = http.post("/v1/models/nope:predict", json={"instances": rows.tolist()})
    assert response.status_code == 404
