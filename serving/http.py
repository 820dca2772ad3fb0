"""Request, response and router for the raw ASGI app (no framework on the hot path)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from serving.codecs import JSON, encode_json

if TYPE_CHECKING:
    from serving.openapi import Operation

Handler = Callable[["Request"], Awaitable["Response"]]


@dataclass(slots=True)
class Request:
    """One HTTP request with its body already read (within the size limit)."""

    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: bytes) -> str | None:
        """A header's value by lower-case name, or ``None``."""
        value = raw_header(self.headers, name)
        return None if value is None else value.decode("latin-1")


def raw_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of the header ``name`` (lower case) in parsed headers, or ``None``."""
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(slots=True)
class Response:
    """Status, body and content type; ``headers`` are extra response headers."""

    body: bytes
    status: int = 200
    content_type: str = JSON
    headers: dict[str, str] | None = None

    def wire_headers(self) -> list[tuple[bytes, bytes]]:
        """Content type, length and the extra headers, as the HTTP layer sends them."""
        wire = [
            (b"content-type", _CONTENT_TYPES.get(self.content_type) or self.content_type.encode()),
            (b"content-length", b"%d" % len(self.body)),
        ]
        if self.headers:
            wire.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        return wire


_CONTENT_TYPES = {
    t: t.encode()
    for t in ("application/json", "text/csv", "application/jsonlines", "application/x-npy")
}


def json_response(
    document: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response."""
    return Response(encode_json(document), status, JSON, headers)


class Access(StrEnum):
    """Who may call a route when authentication is on (``serving.auth``)."""

    API = "api"  # prediction and metadata routes: token required
    HEALTH = "health"  # probes: open unless configured otherwise
    METRICS = "metrics"  # Prometheus scrapes: open unless configured otherwise
    PLATFORM = "platform"  # SageMaker and Vertex AI routes: called as the platforms call them


@dataclass(frozen=True, slots=True)
class Route:
    """A route: method, path template, handler; ``protocol`` set for prediction routes (it
    labels their metrics); ``doc``: its OpenAPI description, written next to the handler.

    ``configured``: the platform chose this path (Vertex AI's ``AIP_PREDICT_ROUTE``), so it wins
    over a built-in route on the same method and path (:class:`Router`)."""

    method: str
    template: str
    handler: Handler
    protocol: str | None = None
    body: bool = False
    access: Access = Access.API
    doc: Operation | None = None
    configured: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.template} ({self.protocol or self.handler.__qualname__})"


class RouteConflict(ValueError):
    """Two routes claim the same method and path: refused at start-up, never overwritten."""


Resolved = tuple[dict[str, Route] | None, Route | None, dict[str, str]]
"""What :meth:`Router.resolve` finds for a request: its path's routes, its route, parameters."""

_PARAM = re.compile(r"\{(\w+)\}")


class Router:
    """Exact paths are one dict lookup; templated paths (``{name}``) are tried in order.

    Routes the platform configured are registered first; a built-in route on the same method
    and path gives way to one (it is listed in :attr:`shadowed`). Any other collision raises
    :class:`RouteConflict`: a route is never replaced silently."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        listed = list(routes)
        configured = [r for r in listed if r.configured]
        for route in configured:
            self.add(route)
        taken = {(r.method, r.template) for r in configured}
        self.shadowed: list[Route] = []
        """Built-in routes not served because a configured route has their method and path."""
        for route in listed:
            if route.configured:
                continue
            if (route.method, route.template) in taken:
                self.shadowed.append(route)
            else:
                self.add(route)

    def add(self, route: Route) -> None:
        """Register a route; a path may carry several methods. Raises :class:`RouteConflict`
        rather than replace a route already registered for the same method and path."""
        if _PARAM.search(route.template) is None:
            _claim(self._exact.setdefault(route.template, {}), route)
            return
        regex = (
            "^"
            + _PARAM.sub(
                lambda m: f"(?P<{m.group(1)}>[^/:]+)",
                re.escape(route.template).replace(r"\{", "{").replace(r"\}", "}"),
            )
            + "$"
        )
        for pattern, methods in self._patterns:
            if pattern.pattern == regex:
                _claim(methods, route)
                return
        self._patterns.append((re.compile(regex), {route.method: route}))

    def routes(self) -> list[Route]:
        """Every registered route, exact paths first, in registration order."""
        tables = [*self._exact.values(), *(methods for _, methods in self._patterns)]
        return [route for methods in tables for route in methods.values()]

    def resolve(self, method: str, path: str) -> Resolved:
        """The routes of ``path`` by method (``None``: unknown path), the one for ``method``
        (``HEAD`` falls back to ``GET``; ``None``: not allowed) and the path parameters."""
        methods, params = self.match(method, path)
        route = None if methods is None else methods.get(method)
        if route is None and method == "HEAD" and methods is not None:
            route = methods.get("GET")
        return methods, route, params

    def match(self, method: str, path: str) -> tuple[dict[str, Route] | None, dict[str, str]]:
        """Routes for ``path`` by method (``None``: unknown path) and the path parameters."""
        methods = self._exact.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self._patterns:
            found = pattern.match(path)
            if found is not None:
                return methods, found.groupdict()
        return None, {}


def _claim(methods: dict[str, Route], route: Route) -> None:
    """Put ``route`` into its path's ``methods``, unless another route has that method."""
    existing = methods.get(route.method)
    if existing is not None:
        raise RouteConflict(
            f"{route} would replace {existing}: two routes on the same method and path; "
            "choose another path (for Vertex AI: AIP_PREDICT_ROUTE / AIP_HEALTH_ROUTE)"
        )
    methods[route.method] = route
