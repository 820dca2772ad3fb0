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

_READY = json_response({"status": "ready"})
_ALIVE = json_response({"status": "alive"})


def ready(runtime: ModelRuntime) -> Response:
    """200 when ready, else 503 with the reason and ``Retry-After``."""
    runtime.require_ready()
    return _READY


def live(runtime: ModelRuntime) -> Response:
    """200 while the process can make progress."""
    if not runtime.live:
        raise Unavailable(runtime.reason, retry_after=5)
    return _ALIVE
