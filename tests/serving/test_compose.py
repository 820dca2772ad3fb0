"""The composition root: one app built from settings, every part wired once."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from serving import contract
from serving.compose import create_app
from serving.settings import Settings


def _get(app: object, path: str) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # scopes as dict
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get(path)

    return asyncio.run(get())


def test_request_series_exist_for_exactly_the_protocols_the_routes_speak() -> None:
    app = create_app(Settings())
    spoken = {route.protocol for route in app.router.routes() if route.protocol}
    exposition = _get(app, contract.METRICS_PATH).text
    published = {
        sample.labels["protocol"]
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "model_predictions_total"
    }
    assert published == spoken == {"sagemaker", "vertex", "v1", "v2", "kubernetes"}
    app.close()


def test_every_part_contributes_its_routes() -> None:
    app = create_app(Settings(aip_predict_route="/vertex/predict"))
    routes = {(route.method, route.template) for route in app.router.routes()}
    assert {
        ("POST", contract.PREDICT_PATH),  # a protocol's
        ("POST", "/vertex/predict"),  # as the settings name it
        ("GET", contract.DRIFT_PATH),  # drift monitoring's
        ("GET", contract.METRICS_PATH),  # the metrics exposition's
        ("GET", "/openapi.json"),  # the document's, built from all of them
    } <= routes
    assert all(route.doc is not None for route in app.router.routes())
    app.close()


def test_the_app_answers_before_the_model_is_loaded() -> None:
    app = create_app(Settings())  # no start-up: nothing is loading
    assert _get(app, contract.LIVENESS_PATH).status_code == 200
    ready = _get(app, contract.READINESS_PATH)
    assert ready.status_code == 503
    assert ready.json() == {"error": "model is loading"}
    assert _get(app, contract.DRIFT_PATH).status_code == 503  # waiting for the model
    app.close()
