"""Optional authentication for the API routes (prediction and metadata).

A token comes from ``ML_ENDPOINTS_AUTH_TOKEN_FILE`` (e.g. a mounted Kubernetes Secret) or
``ML_ENDPOINTS_AUTH_TOKEN``; callers send ``Authorization: Bearer <token>`` or
``X-API-Key: <token>``, compared in constant time. SageMaker and Vertex AI routes stay open (the
platforms authenticate callers themselves and call the container without credentials); health
and metrics routes are open unless ``ML_ENDPOINTS_AUTH_HEALTH`` / ``ML_ENDPOINTS_AUTH_METRICS``.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from serving.errors import ServingError
from serving.http import Access, Request
from serving.settings import Settings


class Unauthorized(ServingError):
    """Missing or wrong credentials (401)."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"www-authenticate": 'Bearer realm="ml-endpoints"'})


class Authenticator:
    """Checks a request's credentials against the configured token."""

    def __init__(self, token: str, protected: frozenset[Access]) -> None:
        if len(token) < 16:
            raise ValueError("the auth token must be at least 16 characters long")
        self._token = token.encode()
        self.protected = protected

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator | None:
        """``None`` when no token is configured (authentication off)."""
        token = settings.auth_token
        if settings.auth_token_file:
            path = Path(settings.auth_token_file)
            try:
                token = path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"cannot read ML_ENDPOINTS_AUTH_TOKEN_FILE {path}: {exc}") from exc
        if not token:
            return None
        protected = {Access.API}
        if settings.auth_health:
            protected.add(Access.HEALTH)
        if settings.auth_metrics:
            protected.add(Access.METRICS)
        return cls(token, frozenset(protected))

    def check(self, request: Request) -> None:
        """Raise 401 unless the request carries the token."""
        supplied = request.header(b"x-api-key")
        if supplied is None:
            authorization = request.header(b"authorization") or ""
            scheme, _, value = authorization.partition(" ")
            supplied = value.strip() if scheme.lower() == "bearer" else None
        if supplied is None:
            raise Unauthorized(
                "credentials required: send 'Authorization: Bearer <token>' or 'X-API-Key: <token>'"
            )
        if not hmac.compare_digest(supplied.encode(), self._token):
            raise Unauthorized("invalid credentials")
