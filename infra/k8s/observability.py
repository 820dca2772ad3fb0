"""Prometheus Operator ``ServiceMonitor`` scraping ``GET /metrics`` of every variant, and with
``monitoring`` its ``PrometheusRule`` (the alert rules of :mod:`infra.monitoring.rules`) and the
Grafana dashboard (:mod:`infra.monitoring.dashboard`) as a ConfigMap for Grafana's sidecar.

Each variant's Service carries the ``ml-endpoints.io/variant`` label and the server labels its
metrics with ``ML_ENDPOINTS_VARIANT``, so champion and challenger can be compared side by side.
The operator adds the ``namespace`` target label, so the rules select this deployment's series by
namespace and model name: a rule per deployment never alerts on another deployment.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.k8s.config import ModelDeploymentArgs
from infra.k8s.pod import METRICS_PATH, PORT_NAME
from infra.monitoring.config import AlertsConfig
from infra.monitoring.dashboard import TITLE, dashboard
from infra.monitoring.rules import rule_groups

SERVICE_MONITOR_API_VERSION = "monitoring.coreos.com/v1"
SERVICE_MONITOR_KIND = "ServiceMonitor"


def service_monitor_spec(args: ModelDeploymentArgs) -> dict[str, Any]:
    """The ``ServiceMonitor`` spec (wire form, camelCase) for ``args``' Services."""
    interval = args.service_monitor.interval if args.service_monitor else "30s"
    return {
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": args.name,
                "app.kubernetes.io/component": "model-server",
            }
        },
        "namespaceSelector": {"matchNames": [args.namespace]},
        "endpoints": [
            {
                "port": PORT_NAME,
                "path": METRICS_PATH,
                "interval": interval,
                "scheme": "http",
            }
        ],
    }


PROMETHEUS_RULE_KIND = "PrometheusRule"
DASHBOARD_UID_MAX = 40
"""Grafana refuses longer dashboard uids."""


def deployment_matchers(args: ModelDeploymentArgs) -> str:
    """PromQL matchers for exactly this deployment's series: its namespace (the ServiceMonitor's
    target label) and its variants' model names (the server's ``model`` label)."""
    models = sorted({variant.model_name for variant in args.variants})
    if len(models) == 1:
        return f'namespace="{args.namespace}",model="{models[0]}"'
    # RE2 in a PromQL string: a literal dot is \\. (the string's own escape, then the regex's).
    alternatives = "|".join(m.replace(".", "\\\\.") for m in models)
    return f'namespace="{args.namespace}",model=~"{alternatives}"'


def prometheus_rule_spec(args: ModelDeploymentArgs, alerts: AlertsConfig) -> dict[str, Any]:
    """The ``PrometheusRule`` spec: the rules of ``alerts`` restricted to this deployment's
    series, in groups named after it (``{namespace}.{name}.records`` and ``.alerts``)."""
    groups = rule_groups(alerts, deployment_matchers(args), f"{args.namespace}.{args.name}")
    return {"groups": groups}


def dashboard_uid(args: ModelDeploymentArgs) -> str:
    """This deployment's dashboard uid: readable when it fits Grafana's 40 characters."""
    uid = f"ml-endpoints-{args.namespace}-{args.name}"
    if len(uid) <= DASHBOARD_UID_MAX:
        return uid
    digest = hashlib.sha256(f"{args.namespace}/{args.name}".encode()).hexdigest()
    return f"ml-endpoints-{digest[: DASHBOARD_UID_MAX - len('ml-endpoints-')]}"


def dashboard_data(args: ModelDeploymentArgs) -> dict[str, str]:
    """The dashboard ConfigMap's ``data``: one JSON file, as Grafana's sidecar expects."""
    models = sorted({variant.model_name for variant in args.variants})
    model = dashboard(
        uid=dashboard_uid(args),
        title=f"{TITLE} ({args.namespace}/{args.name})",
        namespace=args.namespace,
        model=models[0],
    )
    return {f"{args.name}-dashboard.json": json.dumps(model, indent=2)}
