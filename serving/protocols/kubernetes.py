"""Kubernetes probes and the familiar ``/health`` + ``/predict`` JSON API."""

from __future__ import annotations

from typing import Any

from serving import codecs, contract
from serving.errors import BadRequest
from serving.http import Access, Request, Response, Route, json_response
from serving.models.base import Prediction
from serving.openapi import JSON, JSON_PREDICT_ERRORS, Operation, ref
from serving.protocols.health import LIVE_DOC, READY_DOC, live, ready
from serving.runtime import ModelRuntime

PROTOCOL = "kubernetes"
HEALTH_DOC = Operation(
    "Health summary (503 while not ready).", {JSON: ref("Health")}, ok_on_503="Health"
)
PREDICT_DOC = Operation(
    "Predict one row ('features': a row) or several ('features': rows).",
    {JSON: ref("FeaturesResponse")},
    {JSON: ref("FeaturesRequest")},
    errors=JSON_PREDICT_ERRORS,
)


def routes(runtime: ModelRuntime) -> list[Route]:
    """``/health/live``, ``/health/ready``, ``/health`` and ``POST /predict``."""

    async def health_live(_: Request) -> Response:
        return live(runtime)

    async def health_ready(_: Request) -> Response:
        return ready(runtime)

    async def health(_: Request) -> Response:
        healthy = runtime.ready
        return json_response(
            {
                "status": "healthy" if healthy else "unhealthy",
                "model_loaded": runtime.model is not None,
                "state": runtime.state.value,
            },
            200 if healthy else 503,
            None if healthy else {"retry-after": "5"},
        )

    async def predict(request: Request) -> Response:
        codecs.check_content_type(
            codecs.media_type(request.header(b"content-type")), (codecs.JSON,)
        )
        document = codecs.parse_json(request.body)
        if not isinstance(document, dict) or "features" not in document:
            raise BadRequest("body must be a JSON object with 'features': a row of numbers or rows")
        features = document["features"]
        single = isinstance(features, list | dict) and (
            isinstance(features, dict) or not features or not isinstance(features[0], list | dict)
        )
        rows = codecs.to_rows(
            [features] if isinstance(features, dict) else features,
            field="features",
            feature_names=runtime.feature_names,
        )
        answers = _answers(await runtime.predict(rows))
        return json_response(answers[0] if single else {"predictions": answers})

    return [
        Route("GET", contract.LIVENESS_PATH, health_live, access=Access.HEALTH, doc=LIVE_DOC),
        Route("GET", contract.READINESS_PATH, health_ready, access=Access.HEALTH, doc=READY_DOC),
        Route("GET", contract.HEALTH_PATH, health, access=Access.HEALTH, doc=HEALTH_DOC),
        Route(
            "POST", contract.PREDICT_PATH, predict, protocol=PROTOCOL, body=True, doc=PREDICT_DOC
        ),
    ]


def _answers(prediction: Prediction) -> list[dict[str, Any]]:
    labels = prediction.outputs.tolist()
    if prediction.probabilities is None:
        return [{"prediction": label} for label in labels]
    # Python's max over a few classes: a numpy reduction per request costs microseconds more
    rows = prediction.probabilities.tolist()
    return [
        {"prediction": label, "confidence": max(row)}
        for label, row in zip(labels, rows, strict=True)
    ]
