"""Vertex AI custom containers: ``AIP_HEALTH_ROUTE`` and ``AIP_PREDICT_ROUTE``."""

from __future__ import annotations

from serving.errors import BadRequest
from serving.http import Access, Request, Response, Route, json_response
from serving.openapi import JSON, JSON_PREDICT_ERRORS, Operation, ref
from serving.protocols.health import READY_DOC, ready
from serving.protocols.instances import read_instances
from serving.runtime import ModelRuntime
from serving.settings import OutputKind

PROTOCOL = "vertex"
DEFAULT_HEALTH = "/v1/endpoints/{endpoint}/deployedModels/{deployed_model}"
DEFAULT_PREDICT = DEFAULT_HEALTH + ":predict"
_OUTPUTS = ", ".join(repr(k.value) for k in OutputKind)
PREDICT_DOC = Operation(
    "Vertex AI prediction.",
    {JSON: ref("Predictions")},
    {JSON: ref("InstancesRequest")},
    errors=JSON_PREDICT_ERRORS,
)


def routes(runtime: ModelRuntime) -> list[Route]:
    """The routes Vertex names in ``AIP_*`` variables, or its default templates.

    Routes Vertex configured win over the server's built-in routes on the same path: the Vertex
    AI SDK's ``LocalModel`` defaults to ``/predict`` and ``/health``, the Kubernetes API's paths
    (googleapis/python-aiplatform ``google/cloud/aiplatform/constants/prediction.py``)."""
    settings = runtime.settings

    async def health(_: Request) -> Response:
        return ready(runtime)

    async def predict(request: Request) -> Response:
        document, rows = read_instances(request, runtime)
        output = settings.output
        parameters = document.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise BadRequest("'parameters' must be an object")
            if "output" in parameters:
                try:
                    output = OutputKind(parameters["output"])
                except ValueError:
                    raise BadRequest(
                        f"parameters.output {parameters['output']!r} is not one of {_OUTPUTS}"
                    ) from None
        prediction = await runtime.predict(rows)
        return json_response({"predictions": runtime.instance_outputs(prediction, output)})

    return [
        Route(
            "GET",
            settings.aip_health_route or DEFAULT_HEALTH,
            health,
            access=Access.PLATFORM,
            doc=READY_DOC,
            configured=settings.aip_health_route is not None,
        ),
        Route(
            "POST",
            settings.aip_predict_route or DEFAULT_PREDICT,
            predict,
            protocol=PROTOCOL,
            body=True,
            access=Access.PLATFORM,
            doc=PREDICT_DOC,
            configured=settings.aip_predict_route is not None,
        ),
    ]
