"""The ASGI application: dispatch, admission, auth, body limits, errors as JSON, request metrics.

Written against raw ASGI on purpose: the prediction routes are the hot path and a framework's
per-request machinery would cost more than the model call for small models.

The app is handed its parts (``serving.compose.create_app`` builds them): a router, a request
recorder, an authenticator and life-cycle hooks. It knows routes, not protocols, models or
monitoring, so that anything answering HTTP can be tested with it (``tests/serving/
test_transport.py`` serves a router of its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from serving import encodings
from serving.auth import Authenticator
from serving.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServingError,
    Unavailable,
)
from serving.http import Request, Resolved, Response, Router, json_response, raw_header
from serving.metrics import RequestRecorder

log = logging.getLogger("ml_endpoints.app")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
StartupHook = Callable[[], Awaitable[None]]
Hook = Callable[[], None]


class ServingApp:
    """Every route on one port; :meth:`respond` answers every request, ASGI or direct."""

    def __init__(
        self,
        router: Router,
        recorder: RequestRecorder,
        *,
        body_limit: int,
        max_inflight: int,
        auth: Authenticator | None = None,
        on_startup: Sequence[StartupHook] = (),
        on_drain: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
    ) -> None:
        """``on_startup`` runs at lifespan start-up (before the first request is accepted when
        it awaits); ``on_drain`` when shutdown begins (SIGTERM: readiness turns false, requests
        are still served); ``on_shutdown`` once serving has stopped, in order."""
        self.router = router
        self.recorder = recorder
        self.body_limit = body_limit
        self.max_inflight = max_inflight
        self.auth = auth
        self._on_startup = tuple(on_startup)
        self._on_drain = tuple(on_drain)
        self._on_shutdown = tuple(on_shutdown)

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
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Run the start-up hooks (the model starts loading in the background)."""
        for hook in self._on_startup:
            await hook()

    def begin_drain(self) -> None:
        """Called on SIGTERM: readiness turns false, requests are still served."""
        for hook in self._on_drain:
            hook()

    def close(self) -> None:
        """Drain, run the shutdown hooks (model thread, drift, capture flush), publish metrics."""
        self.begin_drain()
        for hook in self._on_shutdown:
            hook()
        self.recorder.flush()

    # -- requests ---------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        response = await self.respond(method, scope["path"], scope["headers"], receive)
        await _send(send, response, method == "HEAD")

    def direct(self, method: str, path: str) -> Resolved | None:
        """The router's answer for ``method path`` when it is a prediction route that
        ``serving.transport`` may answer without the ASGI layer; else ``None``."""
        resolved = self.router.resolve(method, path)
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
        ``receive`` to read it from; ``resolved``: the router's answer, if at hand.
        Never raises: every failure becomes an error response."""
        started = time.perf_counter()
        methods, route, params = resolved or self.router.resolve(method, path)
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
                    self.recorder.reject()
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
                coding = raw_header(headers, b"content-encoding")
                if coding is not None:  # gzip/deflate: the limit holds for the decoded size
                    request.body = encodings.decode(
                        request.body, coding.decode("latin-1"), self.body_limit
                    )
            response = await route.handler(request)
        except ServingError as exc:
            response = json_response({"error": exc.message}, exc.status, exc.headers or None)
        except Exception as exc:  # a real fault: log it, answer 500, keep serving
            log.exception("unhandled error on %s %s", method, path)
            response = json_response({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)
        if protocol is not None:
            self.recorder.end(
                protocol,
                time.perf_counter() - started,
                request_size,
                len(response.body),
                response.status,
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


async def _send(send: Send, response: Response, head_only: bool) -> None:
    headers = response.wire_headers()
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})
