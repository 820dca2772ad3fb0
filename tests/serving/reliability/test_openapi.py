"""The OpenAPI description: complete (built from the router, every route described), served at
``GET /openapi.json``, and true of the live server according to schemathesis."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from serving.compose import create_app
from serving.openapi import UNDOCUMENTED, describe
from serving.settings import Settings
from tests.conftest import ServerProcess
from tests.serving.reliability.observe import status, wait_for

EXAMPLES = 12  # per operation (22 operations)
CHECKS = [
    checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def documented(settings: Settings) -> dict[str, object]:
    app = create_app(settings)
    try:
        return describe(app.router.routes(), app.auth.protected if app.auth else frozenset())
    finally:
        app.close()


def operations(document: dict[str, object]) -> dict[str, dict[str, object]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {f"{m.upper()} {p}": op for p, methods in paths.items() for m, op in methods.items()}


def test_every_route_is_described() -> None:
    app = create_app(Settings())
    try:
        routes = {f"{r.method} {r.template}" for r in app.router.routes()}
        described = operations(describe(app.router.routes()))
    finally:
        app.close()
    assert set(described) == routes
    assert "GET /openapi.json" in described
    assert "POST /v2/models/{model}/versions/{version}/infer" in described
    undocumented = [key for key, op in described.items() if UNDOCUMENTED in str(op["summary"])]
    assert undocumented == []


def test_vertex_routes_follow_the_aip_variables() -> None:
    described = operations(
        documented(Settings(aip_health_route="/health/x", aip_predict_route="/x:predict"))
    )
    assert {"GET /health/x", "POST /x:predict"} <= set(described)
    assert not any("deployedModels" in key for key in described)


def test_protected_routes_declare_the_token() -> None:
    described = operations(documented(Settings(auth_token="s" * 32)))
    predict = described["POST /predict"]
    assert predict["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "401" in predict["responses"]  # type: ignore[operator]
    ping = described["GET /ping"]  # SageMaker calls it without credentials
    assert "security" not in ping
    assert "401" not in ping["responses"]  # type: ignore[operator]


def test_served_document_is_the_routers(demo_server: ServerProcess) -> None:
    response = httpx.get(demo_server.url + "/openapi.json", timeout=5)
    assert response.status_code == 200
    document = response.json()
    assert document == json.loads(json.dumps(documented(Settings())))
    assert document["openapi"].startswith("3.1")


@pytest.fixture(scope="module")
def live_schema(demo_server: ServerProcess) -> OpenApiSchema:
    # fully started: the drift monitor answers 503 + Retry-After until its profile is fitted
    wait_for(lambda: status(demo_server, "/drift") == 200, 30, "drift monitor on")
    schema = schemathesis.openapi.from_url(demo_server.url + "/openapi.json")
    schema.config.update(base_url=demo_server.url)
    return schema


def operation_keys() -> list[tuple[str, str]]:
    """(method, path) of every documented operation, for parametrization."""
    app = create_app(Settings())
    try:
        return sorted((r.method, r.template) for r in app.router.routes())
    finally:
        app.close()


@pytest.mark.parametrize(("method", "path"), operation_keys())
def test_live_server_matches_its_description(
    live_schema: OpenApiSchema, method: str, path: str
) -> None:
    operation = live_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS, timeout=10)

    conforms()
