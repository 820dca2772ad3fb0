"""An OpenAPI 3.1 description of the server's HTTP API, served at ``GET /openapi.json``.

Paths and methods come from the app's router at the time of the first request, so the document
lists exactly the routes that answer (Vertex AI's ``AIP_*`` routes as configured, ``/drift``,
this route itself). Each route carries its own :class:`Operation` (``Route.doc``), written next to
its handler; a route without one is still listed, with :data:`UNDOCUMENTED` in its summary, and
the tests fail on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serving import __version__
from serving.codecs import JSON
from serving.http import Access, Request, Response, Route, json_response

__all__ = ["JSON", "OCTET", "TEXT", "Operation", "describe", "ref", "route"]

OPENAPI_VERSION = "3.1.0"
UNDOCUMENTED = "undocumented route"
OCTET = "application/octet-stream"
TEXT = "text/plain"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def ref(name: str) -> Schema:
    """A reference to the shared schema ``name`` of :data:`SCHEMAS` (``KeyError`` if unknown)."""
    if name not in SCHEMAS:
        raise KeyError(f"no schema {name!r} in serving.openapi.SCHEMAS")
    return _ref(name)


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
    "ServerLive": {
        "type": "object",
        "required": ["live"],
        "properties": {"live": {"type": "boolean"}},
    },
    "ServerReady": {
        "type": "object",
        "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}},
    },
    "ModelList": {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": {"type": "string"}}},
    },
    "SageMakerAnswer": {
        "description": "A bare list of per-row answers, or {'predictions': [...]} when "
        "ML_ENDPOINTS_SAGEMAKER_JSON=predictions.",
        "oneOf": [{"type": "array"}, _ref("Predictions")],
    },
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
    "V1Request": {
        "description": "KServe V1: rows as 'instances' or as 'inputs'.",
        "type": "object",
        "oneOf": [
            {"required": ["instances"], "properties": {"instances": _ref("Rows")}},
            {"required": ["inputs"], "properties": {"inputs": _ref("Rows")}},
        ],
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
class Operation:
    """How one route's request and 200 response look, and which errors it answers."""

    summary: str
    ok: dict[str, Schema]  # media type -> schema of the 200 body
    body: dict[str, Schema] | None = None  # media type -> schema of the request body
    errors: tuple[int, ...] = ()
    ok_on_503: str | None = None  # a schema answered with 503 instead of an Error


PREDICT_ERRORS = (400, 406, 413, 415, 500, 503, 504)
"""What a prediction route with content negotiation answers besides 200."""
JSON_PREDICT_ERRORS = (400, 413, 415, 500, 503, 504)
"""What a JSON-only prediction route answers besides 200."""
STRING: Schema = {"type": "string"}
BINARY: Schema = {"type": "string", "format": "binary"}

_PARAM = re.compile(r"\{(\w+)\}")
_PATH_VALUE = {"type": "string", "pattern": "^[^/:]+$"}  # what serving.http.Router matches


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
    op = route.doc
    if op is None:
        op = Operation(f"{UNDOCUMENTED}: {route.method} {route.template}", {JSON: {}})
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


def route(routes: Callable[[], list[Route]], protected: frozenset[Access] = frozenset()) -> Route:
    """``GET /openapi.json``: the document of ``routes()`` (the app's router, called on the first
    request, so that it lists this route too); ``protected`` as for :func:`describe`."""
    cached: list[Response] = []

    async def openapi_json(_: Request) -> Response:
        if not cached:
            cached.append(json_response(describe(routes(), protected)))
        return cached[0]

    return Route("GET", OPENAPI_PATH, openapi_json, access=Access.HEALTH, doc=_DOC)


OPENAPI_PATH = "/openapi.json"
_DOC = Operation("This document.", {JSON: _ref("OpenAPI")})
