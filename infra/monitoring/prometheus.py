"""A minimal client of Prometheus' HTTP API (``/api/v1/query``, ``query_range``, ``alerts``).

Standard library only: the canary watch runs in a deploy job that has the ``infra`` extra and
nothing else, and three GET endpoints do not justify a dependency. Errors name the URL, the
query and what Prometheus answered, so a failed watch says why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class PrometheusError(RuntimeError):
    """Prometheus could not be reached, or refused or failed the query."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value (NaN when undefined)."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and ``(unix seconds, value)`` points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """Queries one Prometheus server at ``url`` (``http://prometheus.monitoring:9090``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Prometheus URL {url!r} must be http:// or https://host[:port]")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """The instant vector ``expr`` evaluates to (now, or at unix time ``at``)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params, expr)
        if data["resultType"] == "scalar":
            return [Sample({}, _number(data["result"][1]))]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} is a {data['resultType']}, not an instant vector")
        return [Sample(r["metric"], _number(r["value"][1])) for r in data["result"]]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """The range query ``expr`` from ``start`` to ``end`` (unix seconds) every ``step``."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params, expr)
        return [
            Series(r["metric"], [(float(t), _number(v)) for t, v in r["values"]])
            for r in data["result"]
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (``state`` ``pending`` or ``firing``) with their labels."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts", {}, None)["alerts"]
        return alerts

    def _get(self, path: str, params: dict[str, str], expr: str | None) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}" if params else self.url + path
        what = f"{self.url}{path}" + (f" for {expr!r}" if expr else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400 bad query, 422 unprocessable, 503 busy
            raise PrometheusError(f"{what}: HTTP {exc.code}: {_error_of(exc)}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"{what}: cannot reach Prometheus: {reason}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{what}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]


def _number(text: str) -> float:
    """Prometheus encodes sample values as strings (``"NaN"``, ``"+Inf"`` included)."""
    return float(text)


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.load(exc)
    except (ValueError, OSError):
        return str(exc.reason)
    return f"{body.get('errorType')}: {body.get('error')}"
