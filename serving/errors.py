"""Errors the server turns into precise JSON responses: ``{"error": "..."}``."""

from __future__ import annotations


class ServingError(Exception):
    """An error with an HTTP status and a message meant for the caller."""

    status: int = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ServingError):
    """Malformed body, wrong shape or wrong values (400)."""

    status = 400


class NotFound(ServingError):
    """Unknown route or model (404)."""

    status = 404


class MethodNotAllowed(ServingError):
    """Known route, wrong method (405)."""

    status = 405


class NotAcceptable(ServingError):
    """The ``Accept`` header asks for an encoding the server cannot produce (406)."""

    status = 406


class PayloadTooLarge(ServingError):
    """Request body over the configured limit (413)."""

    status = 413


class UnsupportedMediaType(ServingError):
    """``Content-Type`` the route cannot decode (415)."""

    status = 415


class Unavailable(ServingError):
    """Not ready, shutting down or overloaded (503, always with ``Retry-After``)."""

    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"retry-after": str(retry_after)})


class DeadlineExceeded(ServingError):
    """The request did not finish within the per-request deadline (504)."""

    status = 504


class ModelError(ServingError):
    """The model itself failed on input that passed validation (500)."""

    status = 500
