"""Kubernetes probes and the familiar ``/health`` + ``/predict`` JSON API over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import ServerProcess


@pytest.fixture(scope="module")
def rows(demo_rows: list[list[float]], reference: Any) -> np.ndarray:
    """Rows of both classes, some predicted with little confidence."""
    data = np.asarray(demo_rows)
    doubtful = np.argsort(np.abs(reference.predict_proba(data)[:, 1] - 0.5))[:3]
    return np.concatenate([data[:2], data[-2:], data[doubtful]])


@pytest.fixture(scope="module")
def client(demo_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo_server.url, timeout=10) as http:
        yield http


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
def test_probes(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["model_loaded"] is True


def test_predict_one_row(client: httpx.Client, reference: Any, rows: np.ndarray) -> None:
    for row in rows:
        response = client.post("/predict", json={"features": row.tolist()})
        assert response.status_code == 200, response.text
        answer = response.json()
        label = reference.predict(row[None, :])[0]
        probability = reference.predict_proba(row[None, :])[0]
        assert answer["prediction"] == label
        assert answer["confidence"] == pytest.approx(probability[label], abs=1e-6)


def test_predict_rows(client: httpx.Client, reference: Any, rows: np.ndarray) -> None:
    response = client.post("/predict", json={"features": rows.tolist()})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    labels = reference.predict(rows)
    confidence = reference.predict_proba(rows)[np.arange(len(rows)), labels]
    assert [a["prediction"] for a in answers] == labels.tolist()
    np.testing.assert_allclose([a["confidence"] for a in answers], confidence, atol=1e-6)
    assert min(confidence) < 0.9  # the comparison covers doubtful rows, not only 1.0


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"instances": [[0.0] * 30]}, "'features'"),
        ([[0.0] * 30], "'features'"),
        ({"features": [0.0] * 29}, "expected 30 features per row, got 29"),
        ({"features": []}, "'features' is empty"),
        ({"features": "0,1"}, "'features' must be a list of rows of numbers, got a string"),
        ({"features": [0.0] * 29 + [None]}, "row 0, feature 29 is missing"),
    ],
)
def test_bad_predict_bodies_are_400(client: httpx.Client, document: Any, expected: str) -> None:
    response = client.post("/predict", json=document)
    assert response.status_code == 400
    assert expected in response.json()["error"]
