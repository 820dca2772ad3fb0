"""The Grafana dashboard of the serving container: variants compared at the top, then one row per
variant (Grafana repeats the row for each value of ``$variant``).

Built here from :mod:`infra.monitoring.queries`, so the panels ask exactly what the alert rules
and the canary watch ask; ``grafana-dashboard.json`` beside this module is the same dashboard as
a file (``python -m infra.monitoring`` writes it), and ``ModelDeployment`` provisions it as a
ConfigMap for Grafana's dashboard sidecar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.monitoring import queries as q

UID = "ml-endpoints-serving"
TITLE = "ml-endpoints: model serving"
#: Dashboard variables a query may use; a test substitutes them to evaluate every panel.
VARIABLES = ("$datasource", "$namespace", "$model", "$variant", "$__rate_interval")
VARIANT = 'namespace=~"$namespace",model="$model",variant=~"$variant"'
RATE = "$__rate_interval"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24


@dataclass(frozen=True)
class Target:
    """One query of a panel and the legend of its series."""

    expr: str
    legend: str
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """A Grafana panel: what it shows, in which unit."""

    title: str
    description: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat", "bargauge"] = "timeseries"
    width: int = 8
    height: int = 8
    options: dict[str, Any] = field(default_factory=dict)


def _compare(title: str, description: str, expr: str, unit: str) -> Panel:
    return Panel(title, description, (Target(expr, "{{variant}}"),), unit, width=6)


COMPARISON = (
    _compare(
        "Requests per second",
        "Prediction requests per second by variant: the traffic split as served.",
        q.request_rate('namespace=~"$namespace",model="$model"', RATE, ("variant",)),
        "reqps",
    ),
    _compare(
        "5xx ratio",
        "Share of requests failing with 5xx, by variant (what the availability SLO counts).",
        q.error_ratio('namespace=~"$namespace",model="$model"', RATE, by=("variant",)),
        "percentunit",
    ),
    _compare(
        "p99 latency",
        "p99 request latency by variant.",
        q.latency_quantile(0.99, 'namespace=~"$namespace",model="$model"', RATE, ("variant",)),
        "s",
    ),
    _compare(
        "Drift reports finding drift",
        "Share of drift reports that found drift over the last 10 minutes, worst instance.",
        q.drift_detected_share('namespace=~"$namespace",model="$model"', "10m", ("variant",)),
        "percentunit",
    ),
)

PER_VARIANT = (
    Panel(
        "Requests per second",
        "Prediction requests per second by wire protocol (every outcome).",
        (
            Target(
                f"sum by (protocol) (rate({q.selector(q.PREDICTIONS, VARIANT)}[{RATE}]))",
                "{{protocol}}",
            ),
        ),
        "reqps",
    ),
    Panel(
        "Error ratio by status code",
        "Share of prediction requests answered with each error status: 4xx are callers' "
        "mistakes, 5xx count against the availability objective.",
        (Target(q.error_ratio_by_code(VARIANT, RATE), "{{code}}"),),
        "percentunit",
    ),
    Panel(
        "Latency",
        "Time from request received to response ready, from the latency histogram.",
        (
            Target(q.latency_quantile(0.5, VARIANT, RATE, ()), "p50"),
            Target(q.latency_quantile(0.99, VARIANT, RATE, ()), "p99"),
        ),
        "s",
    ),
    Panel(
        "Rows per model call",
        "Adaptive micro-batching: rows the model predicts per call.",
        (
            Target(q.batch_rows_quantile(0.5, VARIANT, RATE), "p50"),
            Target(q.batch_rows_quantile(0.99, VARIANT, RATE), "p99"),
            Target(q.batch_rows_mean(VARIANT, RATE), "mean"),
        ),
    ),
    Panel(
        "In-flight requests",
        "Prediction requests being handled, all instances (admission limit: "
        "ML_ENDPOINTS_MAX_INFLIGHT per worker).",
        (Target(f"sum({q.selector(q.INFLIGHT, VARIANT)})", "in flight"),),
    ),
    Panel(
        "Queue rejections",
        "Requests refused with 503 because the queue or the in-flight limit was full.",
        (Target(q.rejection_rate(VARIANT, RATE, ()), "rejected"),),
        "reqps",
    ),
    Panel(
        "Ready instances",
        "Instances whose every worker has the model loaded and warm, of all instances.",
        (
            Target(f"sum({q.selector(q.READY, VARIANT)})", "ready"),
            Target(f"count({q.selector(q.READY, VARIANT)})", "instances"),
        ),
        kind="stat",
        width=4,
    ),
    Panel(
        "Workers",
        "Live worker processes, all instances.",
        (Target(f"sum({q.selector(q.WORKERS, VARIANT)})", "workers"),),
        kind="stat",
        width=4,
    ),
    Panel(
        "Drift status",
        "Whether the latest drift report of any instance found drift (family-wise level "
        "alpha), and the rows it tested.",
        (
            Target(f"max({q.selector(q.DRIFT_DETECTED, VARIANT)})", "drift"),
            Target(f"max({q.selector(q.DRIFT_WINDOW_ROWS, VARIANT)})", "window rows"),
        ),
        kind="stat",
        width=4,
        options={
            "mappings": [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "no drift", "color": "green"},
                        "1": {"text": "DRIFT", "color": "red"},
                    },
                }
            ]
        },
    ),
    Panel(
        "Drift p-value per feature",
        "Latest p-value of each feature's drift test (lowest over instances); small values "
        "point at the features that moved.",
        (
            Target(
                f"min by (feature, test) ({q.selector(q.DRIFT_P_VALUE, VARIANT)})",
                "{{feature}} ({{test}})",
                instant=True,
            ),
        ),
        kind="bargauge",
        width=12,
        height=12,
        options={"min": 0, "max": 1},
    ),
)


def dashboard(
    uid: str = UID, title: str = TITLE, namespace: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (schema version 39). A deployment's own copy has
    its own ``uid`` and ``title`` (Grafana keeps one dashboard per uid) and opens on its
    ``namespace`` and ``model``."""
    panels: list[dict[str, Any]] = []
    ids = iter(range(1, 1000))
    y = _place(panels, COMPARISON, ids, 0)
    panels.append(
        {
            "type": "row",
            "id": next(ids),
            "title": "Variant $variant",
            "repeat": "variant",
            "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": _WIDTH, "h": 1},
            "panels": [],
        }
    )
    _place(panels, PER_VARIANT, ids, y + 1)
    return {
        "uid": uid,
        "title": title,
        "description": "Serving container metrics (serving/metrics.py): traffic, errors, "
        "latency, batching, saturation, readiness and drift per variant.",
        "tags": ["ml-endpoints"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": _variables({"namespace": namespace, "model": model})},
        "panels": panels,
    }


def dashboard_json() -> str:
    """:func:`dashboard` as the text of ``grafana-dashboard.json``."""
    return json.dumps(dashboard(), indent=2) + "\n"


def targets(model: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every query in a dashboard JSON model."""
    return [
        (panel["title"], target["expr"])
        for panel in model["panels"]
        for target in panel.get("targets", ())
    ]


def _place(out: list[dict[str, Any]], panels: tuple[Panel, ...], ids: Any, y: int) -> int:
    """Lay ``panels`` out left to right, wrapping at Grafana's 24 columns; the next free y."""
    x, row_height = 0, 0
    for panel in panels:
        if x + panel.width > _WIDTH:
            x, y, row_height = 0, y + row_height, 0
        out.append(_panel(panel, next(ids), x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return y + row_height


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if "min" in panel.options:
        defaults["min"], defaults["max"] = panel.options["min"], panel.options["max"]
    if "mappings" in panel.options:
        defaults["mappings"] = panel.options["mappings"]
    options: dict[str, Any] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    if panel.kind == "stat":
        options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    elif panel.kind == "bargauge":
        options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "orientation": "horizontal"}
    return {
        "type": panel.kind,
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": _DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
                **({"instant": True, "range": False} if target.instant else {}),
            }
            for i, target in enumerate(panel.targets)
        ],
    }


def _variables(current: dict[str, str | None]) -> list[dict[str, Any]]:
    def query(name: str, label: str, expr: str, **extra: Any) -> dict[str, Any]:
        if (value := current.get(name)) is not None:
            extra["current"] = {"text": value, "value": value}
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": _DATASOURCE,
            "definition": expr,
            "query": {"query": expr, "refId": f"{name}-variable"},
            "refresh": 2,  # on time range change: variants come and go with rollouts
            "sort": 1,
            **extra,
        }

    ready = q.READY
    return [
        {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus"},
        query(
            "namespace",
            "Namespace",
            f"label_values({ready}, namespace)",
            includeAll=True,
            allValue=".*",
            multi=False,
        ),
        query("model", "Model", f'label_values({ready}{{namespace=~"$namespace"}}, model)'),
        query(
            "variant",
            "Variant",
            f'label_values({ready}{{namespace=~"$namespace",model="$model"}}, variant)',
            includeAll=True,
            multi=True,
        ),
    ]
