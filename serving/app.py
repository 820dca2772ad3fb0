"""The ASGI application: routing, body limits, errors as JSON, metrics, life cycle.

Written against raw ASGI on purpose: the prediction routes are the hot path and a framework's
per-request machinery would cost more than the model call for small models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from serving import contract, openapi
from serving import metrics as metrics_mod
from serving.auth import Authenticator
from serving.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServingError,
    Unavailable,
)
from serving.http import Access, Request, Response, Route, Router, json_response
from serving.metrics import Metrics, RequestRecorder
from serving.monitoring import attach
from serving.protocols import all_routes
from serving.runtime import ModelRuntime
from serving.settings import Settings

log = logging.getLogger("ml_endpoints.app")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Resolved = tuple[dict[str, Route] | None, Route | None, dict[str, str]]


class ServingApp:
    """One model, every protocol, one port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.model_name, settings.model_version, settings.variant)
        self.runtime = ModelRuntime(settings, self.metrics)
        self.body_limit = settings.body_limit
        self.max_inflight = settings.max_inflight
        self.auth = Authenticator.from_settings(settings)
        self.recorder = RequestRecorder(self.metrics)
        self.load_before_serving = False  # True: lifespan startup waits for the model
        self.router = Router()
        for route in all_routes(self.runtime):
            self.router.add(route)
        self.router.add(Route("GET", contract.METRICS_PATH, self._metrics, access=Access.METRICS))
        self.router.add(openapi.route(self))  # GET /openapi.json, built from this router
        self.monitoring = attach(self)  # drift monitor, GET /drift, data capture

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- life cycle -------------------------------------------------------------------------
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                directory = metrics_mod.multiprocess_dir()
                if directory is not None:
                    metrics_mod.forget_dead_workers(directory)
                self.runtime.start()
                if self.load_before_serving:
                    await self.runtime.wait_loaded()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.runtime.begin_drain()
                self.runtime.close()
                self.monitoring.close()  # flushes captured records
                self.recorder.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def begin_drain(self) -> None:
        """Called on SIGTERM: readiness turns false, requests are still served."""
        self.runtime.begin_drain()

    # -- requests ---------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        response = await self.respond(method, scope["path"], scope["headers"], receive)
        await _send(send, response, method == "HEAD")

    def resolve(self, method: str, path: str) -> Resolved:
        """The routes of ``path`` by method (``None``: unknown path), the one for ``method``
        (``HEAD`` falls back to ``GET``) and the path parameters."""
        methods, params = self.router.match(method, path)
        route = None if methods is None else methods.get(method)
        if route is None and method == "HEAD" and methods is not None:
            route = methods.get("GET")
        return methods, route, params

    def direct(self, method: str, path: str) -> Resolved | None:
        """:meth:`resolve`, when ``method path`` is a prediction route that
        ``serving.protocol`` may answer without the ASGI layer; else ``None``."""
        resolved = self.resolve(method, path)
        route = resolved[1]
        return resolved if route is not None and route.body and route.protocol else None

    async def respond(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | Receive,
        resolved: Resolved | None = None,
    ) -> Response:
        """Answer one request: route, admission, auth, body, handler, errors, metrics.

        ``body`` is the request body already read (within ``body_limit``) or the ASGI
        ``receive`` to read it from; ``resolved``: :meth:`resolve`'s answer, if at hand.
        Never raises: every failure becomes an error response."""
        started = time.perf_counter()
        methods, route, params = resolved or self.resolve(method, path)
        protocol = route.protocol if route is not None else None
        request_size = 0
        admitted = False
        try:
            if methods is None:
                raise NotFound(f"no route {path!r}")
            if route is None:
                allowed = ", ".join(sorted(methods))
                raise MethodNotAllowed(
                    f"{method} is not allowed on {path}; use {allowed}", headers={"allow": allowed}
                )
            if protocol is not None:
                inflight = self.recorder.inflight
                if inflight >= self.max_inflight:  # shed load before reading the body
                    raise Unavailable(
                        f"server overloaded: {inflight} requests in flight "
                        f"(limit {self.max_inflight}); retry shortly"
                    )
                self.recorder.begin()
                admitted = True
            request = Request(method, path, headers, b"", params)
            if self.auth is not None and route.access in self.auth.protected:
                self.auth.check(request)
            if route.body:
                request.body = (
                    body if isinstance(body, bytes) else await self._read_body(request, body)
                )
                request_size = len(request.body)
            response = await route.handler(request)
        except ServingError as exc:
            response = json_response({"error": exc.message}, exc.status, exc.headers or None)
        except Exception as exc:  # a real fault: log it, answer 500, keep serving
            log.exception("unhandled error on %s %s", method, path)
            response = json_response({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)
        if protocol is not None:
            status = response.status
            if status == 503 and self.runtime.ready:
                self.metrics.rejections_child.inc()
            self.recorder.end(
                protocol,
                time.perf_counter() - started,
                request_size,
                len(response.body),
                status,
                admitted,
            )
        return response

    async def _read_body(self, request: Request, receive: Receive) -> bytes:
        """Read the body, refusing it as soon as it passes the limit (never buffering past it)."""
        limit = self.body_limit
        length = request.header(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise BadRequest(f"Content-Length {length!r} is not a number") from None
            if declared > limit:
                raise PayloadTooLarge(
                    f"body of {declared} bytes is over the limit of {limit} bytes"
                )
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _metrics(self, _: Request) -> Response:
        self.recorder.flush()
        return Response(self.metrics.exposition(), 200, metrics_mod.CONTENT_TYPE)


async def _send(send: Send, response: Response, head_only: bool) -> None:
    headers = response.wire_headers()
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})


def create_app(settings: Settings | None = None) -> ServingApp:
    """Build the app from ``settings`` (default: from the environment)."""
    return ServingApp(settings or Settings())
