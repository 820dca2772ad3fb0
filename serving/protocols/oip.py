"""Open Inference Protocol (KServe V2, as spoken by Triton clients) and KServe V1.

Supports JSON tensors and the binary tensor data extension (``Inference-Header-Content-Length``),
which ``tritonclient`` uses by default. Health bodies are the protocol's own: ``{"live": true}``
and ``{"ready": true}`` (KServe's ``ServerLiveResponse``/``ServerReadyResponse``, which its
client reads); V1 adds ``GET /`` (``{"status": "alive"}``) and ``GET /v1/models``, and takes
``instances`` or ``inputs`` (kserve/kserve ``python/kserve/kserve/protocol/rest/``).
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np

from serving import __version__, codecs
from serving.errors import BadRequest, NotFound
from serving.http import Access, Request, Response, Route, json_response
from serving.models.base import Prediction
from serving.openapi import BINARY, JSON, JSON_PREDICT_ERRORS, OCTET, Operation, ref
from serving.protocols.health import live, ready
from serving.protocols.instances import read_instances
from serving.runtime import ModelRuntime

PROTOCOL_V2 = "v2"
PROTOCOL_V1 = "v1"
BINARY_HEADER = b"inference-header-content-length"

SERVER_METADATA_DOC = Operation("V2 server metadata.", {JSON: ref("ServerMetadata")})
SERVER_LIVE_DOC = Operation("V2 liveness.", {JSON: ref("ServerLive")}, errors=(503,))
SERVER_READY_DOC = Operation(
    "V2 readiness: model loaded, warm, not shutting down.",
    {JSON: ref("ServerReady")},
    errors=(503,),
)
V1_LIVE_DOC = Operation("KServe V1 liveness.", {JSON: ref("Status")}, errors=(503,))
V1_MODELS_DOC = Operation("KServe V1 model list.", {JSON: ref("ModelList")})
MODEL_METADATA_DOC = Operation(
    "V2 model metadata.", {JSON: ref("ModelMetadata")}, errors=(404, 503)
)
MODEL_READY_DOC = Operation("V2 model readiness.", {JSON: ref("ModelReady")}, errors=(404, 503))
INFER_DOC = Operation(
    "Open Inference Protocol (V2) inference; binary tensor extension supported.",
    {JSON: ref("InferenceResponse"), OCTET: BINARY},
    {JSON: ref("InferenceRequest"), OCTET: BINARY},
    errors=(400, 404, 413, 500, 503, 504),
)
V1_STATUS_DOC = Operation("KServe V1 model status.", {JSON: ref("ModelReady")}, errors=(404,))
V1_PREDICT_DOC = Operation(
    "KServe V1 prediction.",
    {JSON: ref("Predictions")},
    {JSON: ref("V1Request")},
    errors=(404, *JSON_PREDICT_ERRORS),
)

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_ALL_DTYPES = ", ".join([*DTYPES, "BYTES"])
_V2_LIVE = json_response({"live": True})
_V2_READY = json_response({"ready": True})
V1_INSTANCE_KEYS = ("instances", "inputs")


def routes(runtime: ModelRuntime) -> list[Route]:
    """V2 server/model metadata, health, readiness and infer; V1 status and predict."""

    def model_of(request: Request) -> None:
        name = request.params.get("model")
        if name != runtime.name:
            raise NotFound(f"model {name!r} not found; this server serves {runtime.name!r}")
        version = request.params.get("version")
        if version is not None and version != runtime.version:
            raise NotFound(
                f"model {name!r} has no version {version!r}; available: [{runtime.version!r}]"
            )

    async def server_metadata(_: Request) -> Response:
        return json_response({"name": "ml-endpoints", "version": __version__, "extensions": []})

    async def server_live(_: Request) -> Response:
        return live(runtime, _V2_LIVE)

    async def server_ready(_: Request) -> Response:
        return ready(runtime, _V2_READY)

    async def v1_live(_: Request) -> Response:
        return live(runtime)

    async def v1_models(_: Request) -> Response:
        return json_response({"models": [runtime.name]})

    async def model_metadata(request: Request) -> Response:
        model_of(request)
        runtime.require_ready()
        return json_response(_metadata(runtime))

    async def model_ready(request: Request) -> Response:
        model_of(request)
        runtime.require_ready()
        return json_response({"name": runtime.name, "ready": True})

    async def infer(request: Request) -> Response:
        model_of(request)
        header = _split_binary(request)
        request_id = header.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise BadRequest(f"'id' must be a string, got {codecs.json_type(request_id)}")
        rows = _input_rows(header)
        wanted = _requested_outputs(header, runtime)
        prediction = await runtime.predict(rows)
        return _infer_response(runtime, header, prediction, wanted)

    async def v1_status(request: Request) -> Response:
        model_of(request)
        return json_response({"name": runtime.name, "ready": runtime.ready})

    async def v1_predict(request: Request) -> Response:
        model_of(request)
        _, rows = read_instances(request, runtime, V1_INSTANCE_KEYS)
        prediction = await runtime.predict(rows)
        return json_response(
            {"predictions": runtime.instance_outputs(prediction, runtime.settings.output)}
        )

    routes_: list[Route] = [
        Route("GET", "/v2", server_metadata, doc=SERVER_METADATA_DOC),
        Route("GET", "/v2/health/live", server_live, access=Access.HEALTH, doc=SERVER_LIVE_DOC),
        Route("GET", "/v2/health/ready", server_ready, access=Access.HEALTH, doc=SERVER_READY_DOC),
        Route("GET", "/", v1_live, access=Access.HEALTH, doc=V1_LIVE_DOC),
        Route("GET", "/v1/models", v1_models, doc=V1_MODELS_DOC),
        Route("GET", "/v1/models/{model}", v1_status, doc=V1_STATUS_DOC),
        Route(
            "POST",
            "/v1/models/{model}:predict",
            v1_predict,
            protocol=PROTOCOL_V1,
            body=True,
            doc=V1_PREDICT_DOC,
        ),
    ]
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes_ += [
            Route("GET", prefix, model_metadata, doc=MODEL_METADATA_DOC),
            Route("GET", prefix + "/ready", model_ready, doc=MODEL_READY_DOC),
            Route("POST", prefix + "/infer", infer, protocol=PROTOCOL_V2, body=True, doc=INFER_DOC),
        ]
    return routes_


def _metadata(runtime: ModelRuntime) -> dict[str, Any]:
    model = runtime.model
    assert model is not None
    width = model.n_features if model.n_features is not None else -1
    outputs = [
        {
            "name": "predict",
            "datatype": "FP64" if model.classes is None else _datatype(np.asarray(model.classes)),
            "shape": [-1],
        }
    ]
    if model.classes is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(model.classes)]}
        )
    return {
        "name": runtime.name,
        "versions": [runtime.version],
        "platform": model.format,
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}],
        "outputs": outputs,
    }


def _split_binary(request: Request) -> dict[str, Any]:
    """The JSON header and, with the binary extension, the bytes after it."""
    length_text = request.header(BINARY_HEADER)
    body = request.body
    if length_text is None:
        document, binary = codecs.parse_json(body), b""
    else:
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest(
                f"Inference-Header-Content-Length {length_text!r} is not an integer"
            ) from None
        if not 0 < length <= len(body):
            raise BadRequest(
                f"Inference-Header-Content-Length {length} is outside the body ({len(body)} bytes)"
            )
        document, binary = codecs.parse_json(body[:length]), body[length:]
    if not isinstance(document, dict):
        raise BadRequest("inference request must be a JSON object with 'inputs'")
    document["_binary"] = binary
    return document


def _input_rows(header: dict[str, Any]) -> np.ndarray:
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    if len(inputs) != 1:
        raise BadRequest(f"this model takes 1 input tensor [rows, features]; got {len(inputs)}")
    tensor = inputs[0]
    if not isinstance(tensor, dict):
        raise BadRequest("'inputs[0]' must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    if not isinstance(name, str):
        raise BadRequest("'inputs[0].name' must be a string")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or not 1 <= len(shape) <= 2
    ):
        raise BadRequest(
            f"input {name!r}: 'shape' must be [features] or [rows, features], got {shape!r}"
        )
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str):
        raise BadRequest(f"input {name!r}: 'datatype' must be one of {_ALL_DTYPES}")
    if datatype == "BYTES":
        raise BadRequest(f"input {name!r}: datatype BYTES is not supported; send numbers")
    if datatype not in DTYPES:
        raise BadRequest(f"input {name!r}: datatype {datatype!r} is not one of {_ALL_DTYPES}")
    dtype = np.dtype(DTYPES[datatype])
    expected = math.prod(shape)
    parameters = _parameters(tensor, f"input {name!r}: 'parameters'")
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        binary: bytes = header["_binary"]
        if not isinstance(size, int) or size != expected * dtype.itemsize or size > len(binary):
            raise BadRequest(
                f"input {name!r}: binary_data_size {size!r} does not match shape {shape} of "
                f"{datatype} ({expected * dtype.itemsize} bytes; {len(binary)} bytes sent)"
            )
        array = np.frombuffer(binary[:size], dtype=dtype.newbyteorder("<"))
    else:
        if "data" not in tensor:
            raise BadRequest(f"input {name!r}: 'data' is required")
        try:
            array = np.asarray(tensor["data"], dtype=dtype)
        except (ValueError, TypeError, OverflowError):
            raise BadRequest(
                f"input {name!r}: 'data' must be (nested lists of) {datatype} values"
            ) from None
        if array.size != expected:
            raise BadRequest(
                f"input {name!r}: shape {shape} needs {expected} values, 'data' has {array.size}"
            )
    rows: np.ndarray = array.reshape(shape).astype(np.float64, copy=False)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        raise BadRequest(f"input {name!r}: shape {shape} holds no rows")
    return rows


def _parameters(document: dict[str, Any], where: str) -> dict[str, Any]:
    """``document["parameters"]``: an object, or empty when absent."""
    parameters = document.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where} must be an object, got {codecs.json_type(parameters)}")
    return parameters


def _available(runtime: ModelRuntime) -> list[str]:
    model = runtime.model
    return ["predict", "predict_proba"] if model is not None and model.classes else ["predict"]


def _requested_outputs(header: dict[str, Any], runtime: ModelRuntime) -> list[tuple[str, bool]]:
    """(name, binary) per requested output; all available outputs when none are named."""
    available = _available(runtime)
    binary_default = bool(_parameters(header, "'parameters'").get("binary_data_output", False))
    requested = header.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in available]
    if not isinstance(requested, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    wanted = []
    for i, item in enumerate(requested):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"'outputs[{i}]' must be an object with a 'name'")
        if item["name"] not in available:
            raise BadRequest(f"unknown output {item['name']!r}; available: {available}")
        params = _parameters(item, f"'outputs[{i}].parameters'")
        wanted.append((item["name"], bool(params.get("binary_data", binary_default))))
    return wanted


def _datatype(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{array.dtype.itemsize * 8}"
    if kind == "f":
        return f"FP{array.dtype.itemsize * 8}"
    return "BYTES"


def _infer_response(
    runtime: ModelRuntime,
    header: dict[str, Any],
    prediction: Prediction,
    wanted: list[tuple[str, bool]],
) -> Response:
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in wanted:
        array = prediction.outputs if name == "predict" else prediction.probabilities
        assert array is not None
        datatype = _datatype(array)
        entry: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype}
        if binary:
            blob = _to_bytes(array, datatype)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = (array.astype(str) if datatype == "BYTES" else array).ravel().tolist()
        outputs.append(entry)
    document: dict[str, Any] = {
        "model_name": runtime.name,
        "model_version": runtime.version,
        "id": str(header.get("id") or uuid.uuid4()),
        "outputs": outputs,
    }
    head = codecs.encode_json(document)
    if not blobs:
        return Response(head)
    return Response(
        head + b"".join(blobs),
        200,
        "application/octet-stream",
        {"inference-header-content-length": str(len(head))},
    )


def _to_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for item in array.ravel():
            raw = str(item).encode()
            parts.append(len(raw).to_bytes(4, "little") + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
