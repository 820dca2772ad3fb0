"""An OpenAPI 3.1 description of the server's HTTP API, served at ``GET /openapi.json``.

Paths and methods come from the app's router at the time of the first request, so the document
lists exactly the routes that answer (Vertex AI's ``AIP_*`` routes as configured, ``/drift``,
this route itself). Each route's bodies are described by its handler (module and function name);
a route without a description is still listed, with :data:`UNDOCUMENTED` in its summary, and the
tests fail on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from serving import __version__
from serving.codecs import CSV, JSON, JSONLINES, NPY
from serving.http import Access, Request, Response, Route, json_response

if TYPE_CHECKING:
    from serving.app import ServingApp

OPENAPI_VERSION = "3.1.0"
UNDOCUMENTED = "undocumented route"
OCTET = "application/octet-stream"
TEXT = "text/plain"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


_NUMBER = {"type": ["number", "boolean", "null"]}
SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "minLength": 1}},
    },
    "Row": {
        "description": "One row: numbers (null = missing) or an object keyed by feature name.",
        "oneOf": [{"type": "array", "items": _NUMBER}, {"type": "object"}],
    },
    "Rows": {
        "description": "Rows of numbers, or one row.",
        "oneOf": [{"type": "array", "items": _ref("Row")}, {"type": "array", "items": _NUMBER}],
    },
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {}}},
    "Health": {
        "type": "object",
        "required": ["status", "model_loaded", "state"],
        "properties": {
            "status": {"enum": ["healthy", "unhealthy"]},
            "model_loaded": {"type": "boolean"},
            "state": {"enum": ["loading", "ready", "failed", "draining"]},
        },
    },
    "Predictions": {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array"}},
    },
    "InstancesRequest": {
        "type": "object",
        "required": ["instances"],
        "properties": {"instances": _ref("Rows"), "parameters": {"type": "object"}},
    },
    "FeaturesRequest": {
        "type": "object",
        "required": ["features"],
        "properties": {"features": {"oneOf": [_ref("Rows"), {"type": "object"}]}},
    },
    "FeaturesResponse": {
        "oneOf": [
            _ref("Predictions"),
            {"type": "object", "required": ["prediction"], "properties": {"confidence": {}}},
        ]
    },
    "SageMakerJson": {
        "description": "An object with 'instances', 'features' or 'inputs', or the rows alone.",
        "oneOf": [{"type": "object"}, _ref("Rows")],
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    },
    "TensorMetadata": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": _ref("Tensor")},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "id", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": _ref("Tensor")},
        },
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("TensorMetadata")},
            "outputs": {"type": "array", "items": _ref("TensorMetadata")},
        },
    },
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
    "DriftReport": {"type": "object"},
}

_ERROR_STATUSES = {
    400: "Malformed body, wrong shape or values the model cannot take.",
    401: "Missing or wrong credentials (when authentication is on).",
    404: "Unknown route, model or version.",
    405: "The path exists for another method (see Allow).",
    406: "Accept allows none of the types produced.",
    413: "Body over the size limit.",
    415: "Content-Type not accepted here.",
    500: "The model itself failed.",
    503: "Not ready, shutting down or overloaded (see Retry-After).",
    504: "The prediction missed its deadline.",
}


@dataclass(frozen=True)
class _Op:
    """How one handler's request and 200 response look, and which errors it answers."""

    summary: str
    ok: dict[str, Schema]  # media type -> schema of the 200 body
    body: dict[str, Schema] | None = None  # media type -> schema of the request body
    errors: tuple[int, ...] = ()
    ok_on_503: str | None = None  # a schema answered with 503 instead of an Error


_PREDICT_ERRORS = (400, 406, 413, 415, 500, 503, 504)
_JSON_PREDICT_ERRORS = (400, 413, 415, 500, 503, 504)
_READY = _Op("Ready: model loaded, warm, not shutting down.", {JSON: _ref("Status")}, errors=(503,))
_STRING = {"type": "string"}
_V2_INFER = _Op(
    "Open Inference Protocol (V2) inference; binary tensor extension supported.",
    {JSON: _ref("InferenceResponse"), OCTET: {"type": "string", "format": "binary"}},
    {JSON: _ref("InferenceRequest"), OCTET: {"type": "string", "format": "binary"}},
    errors=(400, 404, 413, 500, 503, 504),
)
#: Descriptions by handler: (last part of its module, function name).
OPERATIONS: dict[tuple[str, str], _Op] = {
    ("sagemaker", "ping"): _READY,
    ("sagemaker", "invocations"): _Op(
        "SageMaker inference: JSON, CSV, .npy or JSON Lines in; JSON, CSV or JSON Lines out.",
        {JSON: _ref("Predictions"), CSV: _STRING, JSONLINES: _STRING},
        {
            JSON: _ref("SageMakerJson"),
            CSV: _STRING,
            NPY: {"type": "string", "format": "binary"},
            JSONLINES: _STRING,
        },
        errors=_PREDICT_ERRORS,
    ),
    ("vertex", "health"): _READY,
    ("vertex", "predict"): _Op(
        "Vertex AI prediction.",
        {JSON: _ref("Predictions")},
        {JSON: _ref("InstancesRequest")},
        errors=_JSON_PREDICT_ERRORS,
    ),
    ("oip", "server_metadata"): _Op("V2 server metadata.", {JSON: _ref("ServerMetadata")}),
    ("oip", "server_live"): _Op("V2 liveness.", {JSON: _ref("Status")}, errors=(503,)),
    ("oip", "server_ready"): _READY,
    ("oip", "model_metadata"): _Op(
        "V2 model metadata.", {JSON: _ref("ModelMetadata")}, errors=(404, 503)
    ),
    ("oip", "model_ready"): _Op(
        "V2 model readiness.", {JSON: _ref("ModelReady")}, errors=(404, 503)
    ),
    ("oip", "infer"): _V2_INFER,
    ("oip", "v1_status"): _Op("KServe V1 model status.", {JSON: _ref("ModelReady")}, errors=(404,)),
    ("oip", "v1_predict"): _Op(
        "KServe V1 prediction.",
        {JSON: _ref("Predictions")},
        {JSON: _ref("InstancesRequest")},
        errors=(404, *_JSON_PREDICT_ERRORS),
    ),
    ("kubernetes", "health_live"): _Op("Liveness.", {JSON: _ref("Status")}, errors=(503,)),
    ("kubernetes", "health_ready"): _READY,
    ("kubernetes", "health"): _Op(
        "Health summary (503 while not ready).", {JSON: _ref("Health")}, ok_on_503="Health"
    ),
    ("kubernetes", "predict"): _Op(
        "Predict one row ('features': a row) or several ('features': rows).",
        {JSON: _ref("FeaturesResponse")},
        {JSON: _ref("FeaturesRequest")},
        errors=_JSON_PREDICT_ERRORS,
    ),
    ("app", "_metrics"): _Op("Prometheus metrics (text exposition).", {TEXT: _STRING}),
    ("monitoring", "drift_route"): _Op(
        "This worker's current drift report.", {JSON: _ref("DriftReport")}, errors=(404, 503)
    ),
    ("openapi", "openapi_json"): _Op("This document.", {JSON: _ref("OpenAPI")}),
}

_PARAM = re.compile(r"\{(\w+)\}")
_PATH_VALUE = {"type": "string", "pattern": "^[^/:]+$"}  # what serving.http.Router matches


def operation_key(route: Route) -> tuple[str, str]:
    """The key of ``route``'s description in :data:`OPERATIONS`."""
    handler = route.handler
    module = getattr(handler, "__module__", "") or ""
    name = getattr(handler, "__name__", "") or ""
    return module.rsplit(".", 1)[-1], name


def describe(routes: list[Route], protected: frozenset[Access] = frozenset()) -> dict[str, Any]:
    """The OpenAPI document for ``routes``; ``protected``: access levels that need a token."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(
            route, route.access in protected
        )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "ml-endpoints", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": SCHEMAS},
    }
    if protected:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    return document


def _operation(route: Route, needs_token: bool) -> dict[str, Any]:
    op = OPERATIONS.get(operation_key(route))
    if op is None:
        op = _Op(f"{UNDOCUMENTED}: {route.method} {route.template}", {JSON: {}})
    ok_content = {media: {"schema": schema} for media, schema in op.ok.items()}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": ok_content}}
    error = {"content": {JSON: {"schema": _ref("Error")}}}
    statuses = set(op.errors) | {405}  # another route may own the same path for other methods
    parameters = _PARAM.findall(route.template)
    if parameters:
        statuses.add(404)  # a value no route matches (e.g. holding '/' once decoded)
    if needs_token:
        statuses.add(401)
    for status in sorted(statuses):
        responses[str(status)] = {"description": _ERROR_STATUSES[status], **error}
    if op.ok_on_503 is not None:
        responses["503"] = {
            "description": "Not ready.",
            "content": {JSON: {"schema": _ref(op.ok_on_503)}},
        }
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{route.template}",
        "summary": op.summary,
        "responses": responses,
    }
    if parameters:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _PATH_VALUE}
            for name in parameters
        ]
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in op.body.items()},
        }
    if needs_token:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return operation


def route(app: ServingApp) -> Route:
    """``GET /openapi.json`` for ``app``: built on first request, from the app's router."""
    cached: list[Response] = []

    async def openapi_json(_: Request) -> Response:
        if not cached:
            protected = app.auth.protected if app.auth is not None else frozenset()
            cached.append(json_response(describe(app.router.routes(), protected)))
        return cached[0]

    return Route("GET", "/openapi.json", openapi_json, access=Access.HEALTH)
