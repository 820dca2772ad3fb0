"""uvicorn's httptools protocol with the limits it lacks, enforced while reading.

uvicorn bounds idle keep-alive connections but not a request that arrives slowly: a client
trickling headers or a body (slowloris) would hold a connection and its buffers for ever. Here:

- a request must arrive whole within ``read_timeout`` seconds of its first byte, and a new
  connection must deliver a request within that time too; else ``408`` and the connection closes;
- request headers may not exceed ``max_header_bytes``; else ``431`` and the connection closes.

The common case (a request arriving complete in one read) arms no timer at all. Body size is
enforced by the application while it reads (``serving.app``), so large bodies are refused
without ever being buffered whole.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HTTP/1.1 protocol with a whole-request read deadline and a header size limit."""

    read_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False
        self._headers_done = False
        self._header_bytes = 0

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
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._headers_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_request = False
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
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
