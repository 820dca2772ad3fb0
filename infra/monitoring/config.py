"""Typed settings of the alert rules (stack key ``alerts`` under a target, e.g.
``kubernetes.monitoring.alerts``), with defaults that work for a model served at a few ms.

Every alert has its own block; setting a block to ``null`` leaves that alert out. Durations are
Prometheus durations (``30s``, ``5m``, ``1h``, ``3d``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

DURATION = r"^(0|[1-9]\d*)(ms|s|m|h|d|w)$"
Duration = Annotated[str, Field(pattern=DURATION)]
Window = Annotated[str, Field(pattern=r"^[1-9]\d*(s|m|h|d|w)$")]
"""A range-vector window: at least a second."""
Ratio = Annotated[float, Field(gt=0, le=1)]

_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> float:
    """``"5m"`` -> 300.0."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a Prometheus duration (examples: 30s, 5m, 1h, 3d)")
    return int(match[1]) * _SECONDS[match[2]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class BurnRate(_Frozen):
    """One multi-window burn-rate alert: fires when the 5xx ratio over both ``long_window`` and
    ``short_window`` exceeds ``burn_rate`` times the error budget. The short window makes the
    alert stop soon after the errors stop (Google SRE workbook, "Alerting on SLOs")."""

    long_window: Window
    short_window: Window
    burn_rate: Annotated[float, Field(gt=0)]
    severity: Literal["critical", "warning"]
    for_: Duration = Field("0s", alias="for")

    @field_validator("short_window")
    @classmethod
    def _shorter(cls, value: str, info: ValidationInfo) -> str:
        long = info.data.get("long_window")
        if long is not None and seconds(value) >= seconds(long):
            raise ValueError(f"must be shorter than long_window ({long}), got {value}")
        return value


#: The SRE workbook's recommended pairs for a 30-day 99.9 % objective: 2 % of the budget in an
#: hour or 5 % in six hours pages; 10 % in three days opens a ticket.
DEFAULT_BURN_RATES = (
    BurnRate(long_window="1h", short_window="5m", burn_rate=14.4, severity="critical", for_="2m"),
    BurnRate(long_window="6h", short_window="30m", burn_rate=6, severity="critical", for_="15m"),
    BurnRate(long_window="1d", short_window="2h", burn_rate=3, severity="warning", for_="1h"),
    BurnRate(long_window="3d", short_window="6h", burn_rate=1, severity="warning", for_="3h"),
)


class Availability(_Frozen):
    """The error-ratio SLO: the share of prediction requests that must not fail with 5xx."""

    objective: Annotated[float, Field(gt=0.5, lt=1)] = 0.999
    burn_rates: Annotated[tuple[BurnRate, ...], Field(min_length=1)] = DEFAULT_BURN_RATES


class Latency(_Frozen):
    """The p99 latency SLO, measured by the server from request received to response ready."""

    p99_seconds: Annotated[float, Field(gt=0)] = 0.5
    window: Window = "5m"
    for_: Duration = Field("10m", alias="for")


class ClientErrors(_Frozen):
    """4xx answers above ``ratio``: callers send what the model does not accept (often a
    feature-schema change upstream); not the server's fault, but a model that answers nothing."""

    ratio: Ratio = 0.1
    window: Window = "5m"
    for_: Duration = Field("10m", alias="for")


class Drift(_Frozen):
    """Input drift: at least ``share`` of the drift reports over ``window`` found drift."""

    share: Ratio = 0.5
    window: Window = "10m"
    for_: Duration = Field("5m", alias="for")


class Readiness(_Frozen):
    """An instance that loaded its model is not ready (a worker died, the model thread hangs)."""

    for_: Duration = Field("5m", alias="for")


class Loading(_Frozen):
    """An instance has not loaded its model (slow download, failed load, crash loop)."""

    for_: Duration = Field("15m", alias="for")


class Saturation(_Frozen):
    """In-flight requests near the admission limit, or requests refused with 503."""

    max_inflight: Annotated[int, Field(ge=1)] = 512
    """The server's ``ML_ENDPOINTS_MAX_INFLIGHT`` (per worker)."""
    inflight_ratio: Ratio = 0.8
    rejection_ratio: Ratio = 0.01
    window: Window = "5m"
    for_: Duration = Field("5m", alias="for")


class AlertsConfig(_Frozen):
    """Which alerts exist and when they fire."""

    availability: Availability | None = Availability()
    latency: Latency | None = Latency()
    client_errors: ClientErrors | None = ClientErrors()
    drift: Drift | None = Drift()
    readiness: Readiness | None = Readiness()
    loading: Loading | None = Loading()
    saturation: Saturation | None = Saturation()
    labels: dict[Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")], str] = {}
    """Added to every alert (``team: ml-platform``) for Alertmanager routing."""
    evaluation_interval: Duration | None = None
    """How often Prometheus evaluates these rules (default: its global interval)."""
    runbook_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    """Each alert gets ``runbook_url`` = this URL + ``#`` + the alert name in lower case."""


class CanaryConfig(_Frozen):
    """How ``ml-endpoints canary`` judges a challenger against its champion (stack key
    ``canary``): both are read from Prometheus over the same window, since the watch began."""

    prometheus_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    """Where Prometheus answers queries (``--prometheus`` overrides it)."""
    window: Window = "10m"
    """How long to watch after the weight change before the verdict."""
    poll: Window = "30s"
    """How often to look during the window: a challenger clearly worse fails early."""
    min_requests: Annotated[int, Field(ge=1)] = 100
    """Challenger requests needed for a verdict; fewer is inconclusive (not a pass)."""
    max_5xx_increase: Annotated[float, Field(ge=0, le=1)] = 0.01
    """The challenger's 5xx ratio may exceed the champion's by this much (0.01 = 1 point)."""
    max_4xx_increase: Annotated[float, Field(ge=0, le=1)] = 0.02
    """The same for 4xx: a new model that rejects what the old one accepted is worse."""
    max_p99_ratio: Annotated[float, Field(ge=1)] = 1.5
    """The challenger's p99 latency may be this many times the champion's..."""
    p99_tolerance_seconds: Annotated[float, Field(ge=0)] = 0.005
    """...plus this much (at a few ms, scheduling noise alone moves p99 by 1-2 ms)."""
    drift_share: Ratio | None = 0.5
    """Worse when at least this share of the challenger's drift reports found drift while the
    champion's did not reach it (``null``: drift does not count)."""
