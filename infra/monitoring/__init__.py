"""Watching the serving container: Grafana dashboard, Prometheus alert rules, and the canary watch
that compares a challenger with its champion in Prometheus after a weight change.

``grafana-dashboard.json`` and ``prometheus-rules.yaml`` beside this module are the plain files
(for any Grafana and Prometheus); ``python -m infra.monitoring`` regenerates them from
:mod:`infra.monitoring.dashboard` and :mod:`infra.monitoring.rules`.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARD_FILE = HERE / "grafana-dashboard.json"
RULES_FILE = HERE / "prometheus-rules.yaml"
