"""SageMaker real-time endpoints: ``GET /ping`` and ``POST /invocations``."""

from __future__ import annotations

from typing import Any

import numpy as np

from serving import codecs, contract
from serving.codecs import CSV, JSON, JSONLINES, NPY
from serving.errors import BadRequest, ModelError, ServingError
from serving.http import Access, Request, Response, Route
from serving.models.handler import HandlerModel
from serving.openapi import BINARY, PREDICT_ERRORS, STRING, Operation, ref
from serving.protocols.health import READY_DOC, ready
from serving.runtime import ModelRuntime
from serving.settings import SageMakerJson

PROTOCOL = "sagemaker"
INVOCATIONS_DOC = Operation(
    "SageMaker inference: JSON, CSV, .npy or JSON Lines in and out.",
    {JSON: ref("SageMakerAnswer"), CSV: STRING, NPY: BINARY, JSONLINES: STRING},
    {JSON: ref("SageMakerJson"), CSV: STRING, NPY: BINARY, JSONLINES: STRING},
    errors=PREDICT_ERRORS,
)


def decode(body: bytes, content_type: str, feature_names: list[str] | None) -> np.ndarray:
    """Rows from any body ``/invocations`` accepts."""
    if content_type == JSON:
        document = codecs.parse_json(body)
        if isinstance(document, dict):
            for key in ("instances", "features", "inputs"):
                if key in document:
                    return codecs.to_rows(document[key], field=key, feature_names=feature_names)
            raise BadRequest(
                f"JSON object needs 'instances' (rows) or 'features' (a row or rows); "
                f"got keys {sorted(document)[:5]}"
            )
        return codecs.to_rows(document, field="body", feature_names=feature_names)
    if content_type == CSV:
        return codecs.rows_from_csv(body)
    if content_type == NPY:
        return codecs.rows_from_npy(body)
    if content_type == JSONLINES:
        return codecs.rows_from_jsonlines(body)
    codecs.check_content_type(content_type, codecs.INPUT_TYPES)
    raise AssertionError("unreachable")  # pragma: no cover


def routes(runtime: ModelRuntime) -> list[Route]:
    """The two routes SageMaker calls.

    Answers are encoded as SageMaker's own framework containers encode them
    (aws/sagemaker-inference-toolkit ``encoder.py``): JSON as a bare list (or
    ``{"predictions": [...]}`` with ``ML_ENDPOINTS_SAGEMAKER_JSON=predictions``), CSV, ``.npy``
    (``numpy.save``) or JSON Lines, as ``Accept`` asks; without one (or ``*/*``),
    ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else JSON."""
    settings = runtime.settings
    json_document = settings.sagemaker_json is SageMakerJson.PREDICTIONS
    default = settings.sagemaker_default_accept

    def wanted(accept: str | None) -> str | None:
        if default is not None and (not accept or accept.strip() in ("", "*/*")):
            return str(default)
        return accept

    async def ping(_: Request) -> Response:
        return ready(runtime)

    async def invocations(request: Request) -> Response:
        content_type = codecs.media_type(request.header(b"content-type"))
        accept = wanted(request.header(b"accept"))
        handler = runtime.handler
        if handler is not None and handler.overrides_invocations:
            return await _user_pipeline(runtime, request.body, content_type, accept)
        out_type = codecs.negotiate(accept, codecs.OUTPUT_TYPES)  # 406 before any work
        rows = decode(request.body, content_type, runtime.feature_names)
        prediction = await runtime.predict(rows)
        body, out_type = codecs.encode_rows(
            runtime.instance_array(prediction, settings.output),
            out_type,
            json_document=json_document,
        )
        return Response(body, 200, out_type)

    return [
        Route("GET", contract.SAGEMAKER_PING_PATH, ping, access=Access.PLATFORM, doc=READY_DOC),
        Route(
            "POST",
            contract.SAGEMAKER_INVOCATIONS_PATH,
            invocations,
            protocol=PROTOCOL,
            body=True,
            access=Access.PLATFORM,
            doc=INVOCATIONS_DOC,
        ),
    ]


async def _user_pipeline(
    runtime: ModelRuntime, body: bytes, content_type: str, accept: str | None
) -> Response:
    """Run the user's ``input_fn`` / ``predict_fn`` / ``output_fn`` on the model thread."""
    runtime.require_ready()
    handler, model = runtime.handler, runtime.model
    assert handler is not None
    assert model is not None

    def run() -> Response:
        try:
            data: Any = (
                handler.input_fn(body, content_type)
                if handler.input_fn
                else decode(body, content_type, model.feature_names)
            )
        except ServingError:
            raise
        except Exception as exc:
            raise BadRequest(
                f"input_fn rejected the request: {type(exc).__name__}: {exc}"
            ) from None
        try:
            if isinstance(model, HandlerModel):
                result: Any = model.raw_predict(data)
            else:
                rows = np.asarray(data, dtype=np.float64)
                runtime.validate(rows)
                result = runtime.instance_outputs(model.predict(rows), runtime.settings.output)
        except ServingError:
            raise
        except Exception as exc:
            raise ModelError(f"predict_fn failed: {type(exc).__name__}: {exc}") from None
        wanted = codecs.media_type(accept)
        if handler.output_fn is None:
            encoded, out_type = codecs.encode_rows(
                _plain(result),
                accept,
                json_document=runtime.settings.sagemaker_json is SageMakerJson.PREDICTIONS,
            )
            return Response(encoded, 200, out_type)
        try:
            produced = handler.output_fn(result, wanted)
        except Exception as exc:
            raise ModelError(f"output_fn failed: {type(exc).__name__}: {exc}") from None
        if isinstance(produced, tuple):
            produced, accept_out = produced
        else:
            accept_out = wanted if wanted not in ("*/*", "application/*") else JSON
        if isinstance(produced, str):
            produced = produced.encode()
        return Response(bytes(produced), 200, accept_out)

    return await runtime.call_in_thread(run)


def _plain(result: Any) -> list[Any]:
    if hasattr(result, "tolist"):
        result = result.tolist()
    return result if isinstance(result, list) else [result]
