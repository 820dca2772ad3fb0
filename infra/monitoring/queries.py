"""The PromQL every consumer of the server's metrics shares: dashboard panels, alert rules and the
canary watch ask the same questions, so they are written once, here.

Metric names come from :mod:`serving.contract` (what the server exports). A ``matchers`` argument
is a PromQL label-matcher list without braces (``model="m",variant=~"a|b"``, or ``""``); ``by``
lists the labels to keep; ``window`` is a range duration (``5m``, ``$__rate_interval``).
"""

from __future__ import annotations

from collections.abc import Sequence

from serving import contract

PREDICTIONS = f"{contract.PREDICTIONS_METRIC}_total"
ERRORS = f"{contract.ERRORS_METRIC}_total"
LATENCY_BUCKET = f"{contract.LATENCY_METRIC}_bucket"
BATCH_ROWS = contract.BATCH_ROWS_METRIC
QUEUE_REJECTIONS = f"{contract.QUEUE_REJECTIONS_METRIC}_total"
INFLIGHT = contract.INFLIGHT_METRIC
READY = contract.READY_METRIC
LOAD_SECONDS = contract.LOAD_SECONDS_METRIC
WORKERS = contract.WORKERS_METRIC
DRIFT_DETECTED = contract.DRIFT_DETECTED_METRIC
DRIFT_P_VALUE = contract.DRIFT_P_VALUE_METRIC
DRIFT_WINDOW_ROWS = contract.DRIFT_WINDOW_ROWS_METRIC

#: The labels that identify one deployed variant. ``namespace`` is absent outside Kubernetes;
#: grouping by an absent label is harmless (it stays absent).
VARIANT_LABELS = ("namespace", "model", "variant")

#: HTTP status classes as the server labels them (``code="503"``).
SERVER_ERRORS = '"5.."'
CLIENT_ERRORS = '"4.."'


def selector(metric: str, matchers: str = "", *extra: str) -> str:
    """``metric{matchers,extra...}``, leaving out empty parts."""
    parts = [m for m in (matchers, *extra) if m]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def _by(labels: Sequence[str]) -> str:
    return f"by ({', '.join(labels)}) " if labels else ""


def request_rate(matchers: str, window: str, by: Sequence[str] = VARIANT_LABELS) -> str:
    """Prediction requests per second (every outcome)."""
    return f"sum {_by(by)}(rate({selector(PREDICTIONS, matchers)}[{window}]))"


def error_rate(
    matchers: str, window: str, codes: str = SERVER_ERRORS, by: Sequence[str] = VARIANT_LABELS
) -> str:
    """Failed prediction requests per second whose status matches the regex ``codes``."""
    return f"sum {_by(by)}(rate({selector(ERRORS, matchers, f'code=~{codes}')}[{window}]))"


def error_ratio(
    matchers: str, window: str, codes: str = SERVER_ERRORS, by: Sequence[str] = VARIANT_LABELS
) -> str:
    """Share of prediction requests answered with a status matching ``codes``. The errors
    counter has no series for a code never answered, so the ratio is made 0 (not absent) for a
    variant that served requests without such errors: a dashboard shows 0 %, a canary compares."""
    requests = request_rate(matchers, window, by)
    return f"({error_rate(matchers, window, codes, by)} or {requests} * 0) / {requests}"


def error_ratio_by_code(matchers: str, window: str, by: Sequence[str] = ()) -> str:
    """Share of prediction requests per failing status code (one series per ``code``)."""
    errors = f"sum {_by((*by, 'code'))}(rate({selector(ERRORS, matchers)}[{window}]))"
    on = f"group_left() {request_rate(matchers, window, by)}"
    return f"{errors} / ignoring(code) {on}"


def latency_quantile(
    quantile: float, matchers: str, window: str, by: Sequence[str] = VARIANT_LABELS
) -> str:
    """Request latency quantile in seconds, from the histogram's buckets."""
    buckets = f"sum {_by((*by, 'le'))}(rate({selector(LATENCY_BUCKET, matchers)}[{window}]))"
    return f"histogram_quantile({quantile:g}, {buckets})"


def batch_rows_quantile(quantile: float, matchers: str, window: str, by: Sequence[str] = ()) -> str:
    """Rows per model call at ``quantile`` (adaptive micro-batching)."""
    bucket = selector(f"{BATCH_ROWS}_bucket", matchers)
    return f"histogram_quantile({quantile:g}, sum {_by((*by, 'le'))}(rate({bucket}[{window}])))"


def batch_rows_mean(matchers: str, window: str, by: Sequence[str] = ()) -> str:
    """Mean rows per model call."""
    total = f"sum {_by(by)}(rate({selector(f'{BATCH_ROWS}_sum', matchers)}[{window}]))"
    calls = f"sum {_by(by)}(rate({selector(f'{BATCH_ROWS}_count', matchers)}[{window}]))"
    return f"{total} / {calls}"


def rejection_rate(matchers: str, window: str, by: Sequence[str] = VARIANT_LABELS) -> str:
    """Requests refused per second because the server was saturated (503, queue or in-flight
    limit)."""
    return f"sum {_by(by)}(rate({selector(QUEUE_REJECTIONS, matchers)}[{window}]))"


def drift_detected_share(matchers: str, window: str, by: Sequence[str] = VARIANT_LABELS) -> str:
    """Share of the drift reports in ``window`` that found drift, worst instance: each instance
    tests its own traffic at level alpha, so a single report is a coin with a small bias; the
    share over a window separates real drift (near 1) from chance (near alpha)."""
    return f"max {_by(by)}(avg_over_time({selector(DRIFT_DETECTED, matchers)}[{window}]))"
