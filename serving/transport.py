"""The HTTP/1.1 transport: uvicorn's httptools protocol with the limits it lacks, enforced while
reading, and a direct route for prediction requests.

uvicorn bounds idle keep-alive connections but not a request that arrives slowly: a client
trickling headers or a body (slowloris) would hold a connection and its buffers for ever. Here:

- a request must arrive whole within ``read_timeout`` seconds of its first byte, and a new
  connection must deliver a request within that time too; else ``408`` and the connection closes;
- request headers may not exceed ``max_header_bytes``; else ``431`` and the connection closes.

The common case (a request arriving complete in one read) arms no timer at all. Body size is
enforced by the application while it reads (``serving.app``), so large bodies are refused
without ever being buffered whole.

Prediction requests take a direct route: uvicorn's ASGI machinery (scope, request cycle, receive
and send messages, header re-validation) costs more per request than a small model's predict, so
for a prediction route (:meth:`DirectApp.direct`) with a declared ``Content-Length`` within the
body limit the protocol collects the body itself, calls :meth:`DirectApp.respond` (the very code
the ASGI path runs: admission, auth, handler, errors, metrics) and writes the response. Everything
else
(probes, metrics, chunked or oversized bodies, ``Expect: 100-continue``, upgrades) goes through
ASGI as before. Keep-alive, pipelining (responses in request order), graceful shutdown and
client disconnects behave as on the ASGI path.

This module builds on uvicorn's protocol internals (its parser callbacks, ``cycle``,
``pipeline``, ``flow``, ``_start_asgi_task``): ``tests/serving/test_transport.py`` drives it with a
fake transport and checks every extension point in about a second, so a uvicorn upgrade is
checked before it is trusted.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Coroutine
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from serving.http import Resolved, raw_header

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application

    from serving.http import Response

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in HTTPStatus
}


class DirectApp(Protocol):
    """What the direct route needs from the app (``serving.app.ServingApp`` is one)."""

    body_limit: int

    def direct(self, method: str, path: str) -> Resolved | None:
        """The route of a prediction request the transport may answer itself, else ``None``."""

    def respond(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        resolved: Resolved,
    ) -> Coroutine[Any, Any, Response]:
        """Answer the request; never raises."""


def http_protocol(
    app: DirectApp | None, *, read_timeout: float, max_header_bytes: int
) -> type[HttpProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``): these limits, and the direct
    route to ``app`` (``None``: every request goes through ASGI)."""
    return type(
        "HttpProtocol",
        (HttpProtocol,),
        {"read_timeout": read_timeout, "max_header_bytes": max_header_bytes, "direct_app": app},
    )


class HttpProtocol(HttpToolsProtocol):
    """HTTP/1.1 with a whole-request read deadline, a header size limit and the direct route."""

    read_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    direct_app: DirectApp | None = None  # set: prediction routes take the direct route

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False
        self._headers_done = False
        self._header_bytes = 0
        self._reading: _DirectRequest | None = None  # a direct request whose body is arriving
        self._answering: _DirectRequest | None = None  # a direct request being answered

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_request or self.transport.is_closing():
            return
        if not self._headers_done:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._reject(431, f"request headers exceed {self.max_header_bytes} bytes")
                return
        if self._deadline is None:
            self._arm()  # the request is still arriving: it has read_timeout to finish

    def on_message_begin(self) -> None:
        self._in_request = True
        self._headers_done = False
        self._header_bytes = 0
        # uvicorn builds the ASGI scope here; a direct request needs none: see _asgi_scope()
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        self._headers_done = True
        app = self.direct_app
        if (
            app is not None
            and self._answering is None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
        ):
            method = self.parser.get_method().decode("ascii")
            path = _path(self.url)
            resolved = None if path is None else app.direct(method, path)
            length = raw_header(self.headers, b"content-length")
            if (
                resolved is not None
                and length is not None
                and length.isdigit()  # else chunked, or not a number: ASGI says so
                and int(length) <= app.body_limit
            ):
                assert path is not None
                self._reading = _DirectRequest(
                    method,
                    path,
                    self.headers,
                    self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive(),
                    resolved,
                )
                return
        self._asgi_scope()
        super().on_headers_complete()

    def _asgi_scope(self) -> None:
        """Build the ASGI scope uvicorn's ``on_message_begin`` would have built, keeping the
        URL and headers parsed since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def on_body(self, body: bytes) -> None:
        request = self._reading
        if request is None:
            super().on_body(body)
            return
        request.chunks.append(body)  # at most Content-Length <= body_limit bytes in all

    def on_message_complete(self) -> None:
        self._in_request = False
        self._disarm()
        request = self._reading
        if request is None:
            super().on_message_complete()
            return
        self._reading = None
        self._answering = request
        app = self.direct_app
        assert app is not None
        body = request.chunks[0] if len(request.chunks) == 1 else b"".join(request.chunks)
        self._step(
            request,
            app.respond(request.method, request.path, request.headers, body, request.resolved),
        )

    def _step(self, request: _DirectRequest, answer: Coroutine[Any, Any, Response]) -> None:
        """Run ``answer`` until it waits on a future (resumed when that is done) or returns.

        The coroutine is driven by hand rather than by an ``asyncio.Task``: a task per request
        costs more than the rest of the direct route. Consequently code on the prediction path
        may await futures but must not need ``asyncio.current_task()`` (``asyncio.timeout``,
        ``asyncio.wait_for`` on Python >= 3.12)."""
        try:
            waiting = answer.send(None)
        except StopIteration as done:
            self._answering = None
            self._write(request, done.value)
            return
        except BaseException:  # respond() answers every error; this is a bug or a cancellation
            self._answering = None
            self.logger.exception("direct route failed on %s %s", request.method, request.path)
            self.transport.close()
            return
        if waiting is None:  # a bare yield: run again on the next loop iteration
            self.loop.call_soon(self._step, request, answer)
            return
        waiting._asyncio_future_blocking = False
        waiting.add_done_callback(lambda _: self._step(request, answer))

    def _write(self, request: _DirectRequest, response: Response) -> None:
        """Send the response, then carry on with the connection as uvicorn would."""
        if self.transport.is_closing():  # the client left meanwhile
            return
        self.transport.write(
            _encode(response, request.keep_alive, self.server_state.default_headers)
        )
        if self.access_log:
            self.access_logger.info(
                '%s - "%s %s HTTP/1.1" %d',
                f"{self.client[0]}:{self.client[1]}" if self.client else "",
                request.method,
                request.path,
                response.status,
            )
        if not request.keep_alive:
            self.transport.close()
        self.on_response_complete()  # counts it, resumes reading, starts a pipelined request

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if self._answering is not None:  # a pipelined request waits for the direct answer
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))
            return
        super()._start_asgi_task(cycle, app)

    def shutdown(self) -> None:
        request = self._answering or self._reading
        if request is not None:
            request.keep_alive = False  # close once it is answered
            return
        super().shutdown()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        # self.cycle is this request's only once its headers are in and it went the ASGI way;
        # before that it is the previous request's, long answered
        own_cycle = self._headers_done and self._reading is None
        if own_cycle and self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # answered already (e.g. 413 early): no second status line
            return
        self._reject(408, f"request not received within {self.read_timeout:g} s")

    def _reject(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error and close (the app may be waiting for a body)."""
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()  # unblock the app's receive(): it sees a disconnect
        body = json.dumps({"error": message}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()


class _DirectRequest:
    __slots__ = ("chunks", "headers", "keep_alive", "method", "path", "resolved")

    def __init__(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        resolved: Resolved,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.keep_alive = keep_alive
        self.resolved = resolved
        self.chunks: list[bytes] = []


def _path(url: bytes) -> str | None:
    """The decoded path of a request target, ``None`` when it is not plain ASCII."""
    try:
        if b"?" not in url and b"%" not in url and b"#" not in url:
            return url.decode("ascii")
        path = httptools.parse_url(url).path.decode("ascii")
    except (UnicodeDecodeError, httptools.HttpParserInvalidURLError):
        return None
    return urllib.parse.unquote(path) if "%" in path else path


def _encode(
    response: Response, keep_alive: bool, default_headers: list[tuple[bytes, bytes]]
) -> bytes:
    """Status line, headers and body of ``response`` as HTTP/1.1 bytes."""
    parts = [_STATUS_LINES.get(response.status) or b"HTTP/1.1 %d \r\n" % response.status]
    for name, value in (*response.wire_headers(), *default_headers):
        parts.append(b"%s: %s\r\n" % (name, value))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(response.body)
    return b"".join(parts)
