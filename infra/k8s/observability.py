"""Prometheus Operator ``ServiceMonitor`` scraping ``GET /metrics`` of every variant.

Each variant's Service carries the ``ml-endpoints.io/variant`` label and the server labels its
metrics with ``ML_ENDPOINTS_VARIANT``, so champion and challenger can be compared side by side.
"""

from __future__ import annotations

from typing import Any

from infra.k8s.config import ModelDeploymentArgs
from infra.k8s.pod import METRICS_PATH, PORT_NAME

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
