"""The Google side of a local fake of a Google Cloud REST API, for the real client libraries
(the server itself is :class:`~tests.infra.http_fake.HttpFake`).

A fake subclasses :class:`FakeGoogleApi`, lists its ``ROUTES`` (HTTP method, path pattern whose
first group is the resource name, API method name) and implements ``_<method name>(name, body,
query)``. Errors go back in Google's JSON error shape (``{"error": {"code", "message",
"status"}}``), which the clients' REST transports turn into ``google.api_core.exceptions``.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.infra.http_fake import HttpFake

_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    500: "INTERNAL",
}


class ApiError(Exception):
    """An error answer: HTTP status, canonical status name and message."""

    def __init__(self, http: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.http = http
        self.status = status or _STATUS.get(http, "UNKNOWN")


@dataclass
class Call:
    """One API method the fake served, in order (``method`` as in the REST reference)."""

    method: str
    target: str
    body: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[str, dict[str, Any], dict[str, str]], dict[str, Any]]


class FakeGoogleApi(HttpFake):
    """Start with :meth:`start`, point the client at :attr:`url`, stop with :meth:`stop`."""

    ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def methods(self, *names: str) -> list[str]:
        """The API methods called so far, in order, optionally only those in ``names``."""
        return [c.method for c in self.calls if not names or c.method in names]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(request.headers.get("content-length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
            for method, pattern, name in self.ROUTES:
                found = re.match(pattern, url.path)
                if found and request.command == method:
                    handler: Handler = getattr(self, "_" + name)
                    target = found.group(1)  # as sent: encoded ids stay encoded
                    with self._lock:
                        self.calls.append(Call(name, target, copy.deepcopy(body)))
                        answer = handler(target, body, query)
                    self._send(request, 200, answer)
                    return
            raise ApiError(404, f"no such method: {request.command} {url.path}")
        except ApiError as exc:
            error = {"code": exc.http, "message": str(exc), "status": exc.status}
            self._send(request, exc.http, {"error": error})
        except json.JSONDecodeError as exc:
            self._send(request, 400, {"error": {"code": 400, "message": f"bad JSON: {exc}"}})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("content-type", "application/json; charset=UTF-8")
        request.send_header("content-length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
