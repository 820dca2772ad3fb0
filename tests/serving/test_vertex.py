"""Vertex AI custom-container contract over real HTTP, configured by ``AIP_*`` as Vertex does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ServerProcess

HEALTH_ROUTE = "/v1/endpoints/123/deployedModels/456"
PREDICT_ROUTE = HEALTH_ROUTE + ":predict"
VERTEX_LIMIT = 1536 * 1024  # 1.5 MB on shared public endpoints


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]]) -> np.ndarray:
    data = np.asarray(demo_rows)
    return np.concatenate([data[:5], data[-5:]])


@pytest.fixture(scope="module")
def vertex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The server started as Vertex starts it: no flags, only the variables Vertex sets."""
    server = ServerProcess([], flags=False)
    server.env |= {
        "AIP_MODE": "PREDICTION",
        "AIP_HTTP_PORT": str(server.port),
        "AIP_HEALTH_ROUTE": HEALTH_ROUTE,
        "AIP_PREDICT_ROUTE": PREDICT_ROUTE,
        "AIP_ENDPOINT_ID": "123",
        "AIP_DEPLOYED_MODEL_ID": "456",
        "AIP_MACHINE_TYPE": "n1-standard-2",
        "ML_ENDPOINTS_DRAIN_SECONDS": "0",
    }
    server.start(tmp_path_factory.mktemp("vertex"), ready_path=HEALTH_ROUTE)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    server.stop()


def test_health_route_from_environment(vertex: httpx.Client) -> None:
    response = vertex.get(HEALTH_ROUTE)
    assert response.status_code == 200
    assert response.elapsed.total_seconds() < 10


def test_default_route_templates_are_not_served_when_routes_are_set(vertex: httpx.Client) -> None:
    assert vertex.get("/v1/endpoints/1/deployedModels/2").status_code == 404
    response = vertex.post("/v1/endpoints/1/deployedModels/2:predict", json={"instances": []})
    assert response.status_code == 404


@pytest.mark.parametrize("parameters", [None, {}, {"output": "label"}, {"unrelated": 1}])
def test_predict_labels(
    vertex: httpx.Client, reference: Any, rows: np.ndarray, parameters: dict[str, Any] | None
) -> None:
    document: dict[str, Any] = {"instances": rows.tolist()}
    if parameters is not None:
        document["parameters"] = parameters
    response = vertex.post(PREDICT_ROUTE, json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": reference.predict(rows).tolist()}


def test_parameters_output_probabilities(
    vertex: httpx.Client, reference: Any, rows: np.ndarray
) -> None:
    response = vertex.post(
        PREDICT_ROUTE,
        json={"instances": rows.tolist(), "parameters": {"output": "probabilities"}},
    )
    assert response.status_code == 200, response.text
    served = np.asarray(response.json()["predictions"])
    np.testing.assert_allclose(served, reference.predict_proba(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"instances": [[0.0] * 30], "parameters": {"output": "logits"}},
            "parameters.output 'logits' is not one of 'label', 'probabilities'",
        ),
        ({"instances": [[0.0] * 30], "parameters": ["output"]}, "'parameters' must be an object"),
        ({"rows": [[0.0] * 30]}, "'instances'"),
        ({"instances": [[0.0] * 29]}, "expected 30 features per row, got 29"),
    ],
)
def test_bad_requests_name_the_field(
    vertex: httpx.Client, document: dict[str, Any], expected: str
) -> None:
    response = vertex.post(PREDICT_ROUTE, json=document)
    assert response.status_code == 400
    assert expected in response.json()["error"]


def test_body_just_under_the_vertex_limit_is_served(vertex: httpx.Client, rows: np.ndarray) -> None:
    row = json.dumps(rows[0].tolist())
    count = (VERTEX_LIMIT - 100) // (len(row) + 1)
    body = ('{"instances": [' + ",".join([row] * count) + "]}").encode()
    assert len(body) <= VERTEX_LIMIT
    response = vertex.post(
        PREDICT_ROUTE, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == count


def test_aip_mode_prediction_lowers_the_body_limit(vertex: httpx.Client) -> None:
    body = b'{"instances": [' + b"0.0," * (VERTEX_LIMIT // 4) + b"0.0]}"
    assert VERTEX_LIMIT < len(body) < 6 * 1024 * 1024
    response = vertex.post(
        PREDICT_ROUTE, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert f"limit of {VERTEX_LIMIT} bytes" in response.json()["error"]
