"""Prometheus alert rules for the serving container, built from :class:`AlertsConfig`.

The same groups become a plain rules file (``prometheus-rules.yaml`` beside this module, the
defaults, for any Prometheus) and the spec of a Prometheus Operator ``PrometheusRule`` declared
next to the ``ServiceMonitor``. Recording rules compute each ratio once per window; the alerts
compare them. What each alert means and what to do about it: the README's "Alerts" section.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML

from infra.monitoring import queries as q
from infra.monitoring.config import AlertsConfig, BurnRate

#: Every alert name, so that docs and tests can list them.
ALERTS = (
    "ModelErrorBudgetBurn",
    "ModelLatencyHigh",
    "ModelClientErrorsHigh",
    "ModelDriftDetected",
    "ModelNotReady",
    "ModelStuckLoading",
    "ModelSaturated",
    "ModelRequestsRejected",
)
_WHO = "{{ $labels.model }}/{{ $labels.variant }}"
_INSTANCE = "{{ $labels.instance }} (" + _WHO + ")"


def ratio_record(kind: str, window: str) -> str:
    """Name of the recorded ``kind`` (``5xx``, ``4xx``) ratio over ``window``."""
    return f"model_variant:prediction_{kind}:ratio_rate{window}"


def p99_record(window: str) -> str:
    """Name of the recorded p99 latency over ``window``."""
    return f"model_variant:prediction_latency_seconds:p99_rate{window}"


def rule_groups(config: AlertsConfig, matchers: str = "", name: str = "ml-endpoints") -> list[Any]:
    """The rule groups: ``{name}.records`` (ratios per window) and ``{name}.alerts``.

    ``matchers`` restricts every selector (``namespace="ml",model=~"a|b"``): a ``PrometheusRule``
    per deployment must not alert on another deployment's series.
    """
    records: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []

    def record(name: str, expr: str) -> None:
        if all(r["record"] != name for r in records):
            records.append({"record": name, "expr": expr})

    if (availability := config.availability) is not None:
        budget = 1 - availability.objective
        for burn in availability.burn_rates:
            for window in (burn.long_window, burn.short_window):
                record(ratio_record("5xx", window), q.error_ratio(matchers, window))
            alerts.append(_burn_alert(burn, budget, availability.objective))
    if (latency := config.latency) is not None:
        record(p99_record(latency.window), q.latency_quantile(0.99, matchers, latency.window))
        alerts.append(
            _alert(
                "ModelLatencyHigh",
                f"{p99_record(latency.window)} > {latency.p99_seconds:g}",
                latency.for_,
                "warning",
                f"{_WHO}: p99 latency above {latency.p99_seconds:g} s",
                "p99 latency over the last "
                f"{latency.window} is {{{{ $value | humanizeDuration }}}} "
                f"(objective {latency.p99_seconds:g} s).",
            )
        )
    if (client := config.client_errors) is not None:
        record(
            ratio_record("4xx", client.window),
            q.error_ratio(matchers, client.window, q.CLIENT_ERRORS),
        )
        alerts.append(
            _alert(
                "ModelClientErrorsHigh",
                f"{ratio_record('4xx', client.window)} > {client.ratio:g}",
                client.for_,
                "warning",
                f"{_WHO}: many requests rejected with 4xx",
                f"{{{{ $value | humanizePercentage }}}} of requests over the last {client.window} "
                f"were answered 4xx (threshold {client.ratio * 100:.4g}%): callers send what the "
                "model does not accept.",
            )
        )
    if (drift := config.drift) is not None:
        alerts.append(
            _alert(
                "ModelDriftDetected",
                f"{q.drift_detected_share(matchers, drift.window)} >= {drift.share:g}",
                drift.for_,
                "warning",
                f"{_WHO}: input drift",
                f"{{{{ $value | humanizePercentage }}}} of the drift reports over the last "
                f"{drift.window} found drift against the reference profile (GET /drift names "
                "the features).",
            )
        )
    ready, loaded = q.selector(q.READY, matchers), q.selector(q.LOAD_SECONDS, matchers)
    if (readiness := config.readiness) is not None:
        alerts.append(
            _alert(
                "ModelNotReady",
                f"{ready} == 0 and {loaded} > 0",
                readiness.for_,
                "warning",
                f"{_INSTANCE} lost readiness",
                "The instance loaded its model but has not been ready since: a worker died or "
                "is restarting, or the instance is stuck draining.",
            )
        )
    if (loading := config.loading) is not None:
        alerts.append(
            _alert(
                "ModelStuckLoading",
                f"{ready} == 0 unless {loaded}",
                loading.for_,
                "critical",
                f"{_INSTANCE} never finished loading its model",
                f"No model loaded for {loading.for_}: a slow or failing download, a failed "
                "load or warm-up (GET /health/ready says why), or a crash loop.",
            )
        )
    if (saturation := config.saturation) is not None:
        inflight = q.selector(q.INFLIGHT, matchers)
        workers = q.selector(q.WORKERS, matchers)
        alerts.append(
            _alert(
                "ModelSaturated",
                f"{inflight} / ({workers} * {saturation.max_inflight}) > "
                f"{saturation.inflight_ratio:g}",
                saturation.for_,
                "warning",
                f"{_INSTANCE} near its in-flight limit",
                f"In-flight requests are {{{{ $value | humanizePercentage }}}} of the admission "
                f"limit ({saturation.max_inflight} per worker); past it, requests get 503.",
            )
        )
        window = saturation.window
        alerts.append(
            _alert(
                "ModelRequestsRejected",
                f"{q.rejection_rate(matchers, window)} / {q.request_rate(matchers, window)} > "
                f"{saturation.rejection_ratio:g}",
                saturation.for_,
                "warning",
                f"{_WHO}: requests refused with 503 (saturated)",
                f"{{{{ $value | humanizePercentage }}}} of requests over the last {window} were "
                "refused because the queue or the in-flight limit was full.",
            )
        )
    for rule in alerts:
        rule["labels"] = {**rule["labels"], **config.labels}
        if config.runbook_url:
            rule["annotations"]["runbook_url"] = f"{config.runbook_url}#{rule['alert'].lower()}"
    groups: list[dict[str, Any]] = [
        {"name": f"{name}.records", "rules": records},
        {"name": f"{name}.alerts", "rules": alerts},
    ]
    if config.evaluation_interval:
        for group in groups:
            group["interval"] = config.evaluation_interval
    return [g for g in groups if g["rules"]]


def rules_file(config: AlertsConfig | None = None, matchers: str = "") -> str:
    """The plain Prometheus rules file (``rule_files:``) for ``config`` (default: defaults)."""
    groups = rule_groups(config or AlertsConfig(), matchers)
    header = (
        "# Prometheus alert rules for ml-endpoints (generated by `python -m infra.monitoring`\n"
        "# from infra/monitoring/config.py defaults; the README explains every alert).\n"
    )
    writer = YAML()
    writer.width = 1000  # one expression per line
    writer.indent(mapping=2, sequence=2, offset=0)
    body = io.StringIO()
    writer.dump({"groups": groups}, body)
    return header + body.getvalue()


def _burn_alert(burn: BurnRate, budget: float, objective: float) -> dict[str, Any]:
    threshold = f"{burn.burn_rate * budget:.6g}"
    long_ratio, short_ratio = (
        ratio_record("5xx", burn.long_window),
        ratio_record("5xx", burn.short_window),
    )
    return _alert(
        "ModelErrorBudgetBurn",
        f"{long_ratio} > {threshold} and {short_ratio} > {threshold}",
        burn.for_,
        burn.severity,
        f"{_WHO}: 5xx errors burn the error budget {burn.burn_rate:g}x too fast",
        f"{{{{ $value | humanizePercentage }}}} of requests failed with 5xx over the last "
        f"{burn.long_window} (objective {objective * 100:.4g}% leaves {budget * 100:.4g}%); at "
        f"this rate the 30-day budget lasts {30 / burn.burn_rate:.3g} days.",
        {"long_window": burn.long_window, "short_window": burn.short_window},
    )


def _alert(
    name: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ not in ("0s", "0m", "0"):
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule
