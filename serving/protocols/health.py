"""Health answers shared by every protocol's probe routes."""

from __future__ import annotations

from serving.errors import Unavailable
from serving.http import Response, json_response
from serving.openapi import JSON, Operation, ref
from serving.runtime import ModelRuntime

READY_DOC = Operation(
    "Ready: model loaded, warm, not shutting down.", {JSON: ref("Status")}, errors=(503,)
)
LIVE_DOC = Operation("Liveness.", {JSON: ref("Status")}, errors=(503,))

READY = json_response({"status": "ready"})
ALIVE = json_response({"status": "alive"})


def ready(runtime: ModelRuntime, answer: Response = READY) -> Response:
    """``answer`` (200) when ready, else 503 with the reason and ``Retry-After``."""
    runtime.require_ready()
    return answer


def live(runtime: ModelRuntime, answer: Response = ALIVE) -> Response:
    """``answer`` (200) while the process can make progress, else 503 with the reason."""
    if not runtime.live:
        raise Unavailable(runtime.reason, retry_after=5)
    return answer
