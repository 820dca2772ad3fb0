"""Routes the platform configures win over built-in ones; no route is ever replaced silently.

The Vertex AI SDK's ``LocalModel`` sets ``AIP_PREDICT_ROUTE=/predict`` and
``AIP_HEALTH_ROUTE=/health`` by default (googleapis/python-aiplatform
``google/cloud/aiplatform/constants/prediction.py``), the paths of the Kubernetes API."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from serving.http import Request, Response, Route, RouteConflict, Router, json_response
from tests.conftest import ServerProcess


def _handler(name: str) -> Any:
    async def handle(_: Request) -> Response:
        return json_response({"route": name})

    handle.__qualname__ = name
    return handle


def test_a_configured_route_wins_and_the_built_in_one_is_reported() -> None:
    builtin = Route("POST", "/predict", _handler("kubernetes"), protocol="kubernetes")
    configured = Route("POST", "/predict", _handler("vertex"), protocol="vertex", configured=True)
    router = Router([builtin, configured])
    _, route, _ = router.resolve("POST", "/predict")
    assert route is configured
    assert router.shadowed == [builtin]


def test_two_built_in_routes_on_one_path_refuse_to_start() -> None:
    with pytest.raises(
        RouteConflict, match=r"POST /predict \(b\) would replace POST /predict \(a\)"
    ):
        Router(
            [
                Route("POST", "/predict", _handler("a"), protocol="a"),
                Route("POST", "/predict", _handler("b"), protocol="b"),
            ]
        )


def test_two_configured_routes_on_one_path_refuse_to_start() -> None:
    first = Route("GET", "/health", _handler("a"), configured=True)
    second = Route("GET", "/health", _handler("b"), configured=True)
    with pytest.raises(RouteConflict, match="AIP_PREDICT_ROUTE"):
        Router([first, second])


def test_adding_a_route_never_replaces_one() -> None:
    router = Router([Route("GET", "/v1/models/{model}", _handler("a"))])
    with pytest.raises(RouteConflict):
        router.add(Route("GET", "/v1/models/{model}", _handler("b")))
    router.add(Route("POST", "/v1/models/{model}", _handler("c")))  # another method: fine


@pytest.fixture(scope="module")
def vertex_on_kubernetes_paths(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = {"AIP_PREDICT_ROUTE": "/predict", "AIP_HEALTH_ROUTE": "/health"}
    server = ServerProcess([], env).start(
        tmp_path_factory.mktemp("vertex-routes"), ready_path="/health"
    )
    yield server
    server.stop()


def test_vertex_requests_are_answered_on_its_configured_routes(
    vertex_on_kubernetes_paths: ServerProcess, reference: Any, demo_rows: list[list[float]]
) -> None:
    rows = np.asarray(demo_rows)[[0, -1]]
    url = vertex_on_kubernetes_paths.url
    response = httpx.post(url + "/predict", json={"instances": rows.tolist()}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": reference.predict(rows).tolist()}
    health = httpx.get(url + "/health", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ready"}  # Vertex's health answer, not the Kubernetes one
    assert httpx.get(url + "/health/live", timeout=10).status_code == 200  # other routes stay
    assert "is not served: the platform configured that path" in vertex_on_kubernetes_paths.log()
