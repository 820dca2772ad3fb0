"""The Grafana dashboard asks questions the server can answer: every panel's PromQL, as written
in ``grafana-dashboard.json``, evaluated by a real Prometheus scraping two live servers (champion
and a fault-injecting challenger) under bounded load, returns data for every variant.

Grafana's own variables are substituted as Grafana would for one variant: ``$__rate_interval``
is four scrape intervals (Grafana's rule: max(4 x scrape interval, step + scrape interval)),
https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.monitoring import DASHBOARD_FILE
from infra.monitoring.dashboard import VARIABLES, dashboard_json, targets
from infra.monitoring.picture import render
from tests.infra.monitoring.conftest import Serve
from tests.infra.monitoring.harness import SCRAPE_SECONDS, PrometheusServer
from tests.infra.monitoring.traffic import Mix, Sent, drive

MODEL = "dashboard"
VARIANTS = ("champion", "challenger")
#: ``make dashboard-picture`` serves longer for the README's picture.
LOAD_SECONDS = float(os.environ.get("ML_ENDPOINTS_DASHBOARD_LOAD_SECONDS", "8"))
RATE_INTERVAL = f"{4 * SCRAPE_SECONDS}s"


@dataclass
class Observed:
    """Both variants served a load that Prometheus scraped from ``start`` to ``end``."""

    prometheus: PrometheusServer
    start: float
    end: float
    sent: dict[str, Sent]


@pytest.fixture(scope="module")
def observed(serve: Serve, prometheus: PrometheusServer) -> Observed:
    servers = {
        "champion": serve(MODEL, "champion", prometheus),
        "challenger": serve(MODEL, "challenger", prometheus, faults=True),
    }
    mixes = {
        "champion": Mix(good=4, batch=1, malformed=1, drifted=1),
        "challenger": Mix(good=4, batch=1, malformed=1, failing=1, slow=1, drifted=1),
    }
    sent: dict[str, Sent] = {}
    start = time.time()
    threads = [
        threading.Thread(
            target=lambda v=variant: sent.__setitem__(
                v, drive(servers[v].url, mixes[v], LOAD_SECONDS)
            )
        )
        for variant in VARIANTS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(2 * SCRAPE_SECONDS + 0.5)  # the last requests scraped
    return Observed(prometheus, start, time.time(), sent)


def substitute(expr: str, variant: str) -> str:
    """The query Grafana sends for ``variant``'s row (``$namespace`` = All)."""
    from infra.monitoring.picture import substitute

    return substitute(expr, MODEL, variant, RATE_INTERVAL)


def dashboard_file() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def test_file_is_the_generated_dashboard() -> None:
    """``grafana-dashboard.json`` is what the code builds (``python -m infra.monitoring``)."""
    assert DASHBOARD_FILE.read_text() == dashboard_json()


def test_queries_use_only_the_dashboard_variables() -> None:
    model = dashboard_file()
    defined = {f"${v['name']}" for v in model["templating"]["list"]} | {"$__rate_interval"}
    assert defined == set(VARIABLES)
    for title, expr in targets(model):
        used = set(re.findall(r"\$\w+", expr))
        assert used <= defined, f"{title}: {expr} uses {used - defined}"


def test_rows_repeat_per_variant() -> None:
    """One row per variant: Grafana repeats the row (and the panels under it) for each value."""
    rows = [p for p in dashboard_file()["panels"] if p["type"] == "row"]
    assert [(r["repeat"], r["title"]) for r in rows] == [("variant", "Variant $variant")]
    per_variant = [
        p for p in dashboard_file()["panels"] if p["gridPos"]["y"] > rows[0]["gridPos"]["y"]
    ]
    titles = {p["title"] for p in per_variant}
    assert {
        "Requests per second",
        "Error ratio by status code",
        "Latency",
        "Rows per model call",
        "In-flight requests",
        "Queue rejections",
        "Ready instances",
        "Workers",
        "Drift status",
        "Drift p-value per feature",
    } <= titles


def test_load_reached_both_variants(observed: Observed) -> None:
    """The load had every outcome the panels show (else an empty panel could pass unnoticed)."""
    assert {200, 400} <= set(observed.sent["champion"].statuses)
    assert {200, 400, 500} <= set(observed.sent["challenger"].statuses)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_panel_has_data_for_each_variant(observed: Observed, variant: str) -> None:
    """Each query returns at least one finite value for ``variant`` over the load window; the
    comparison panels (grouped by variant) return a series for it."""
    empty = []
    for title, expr in targets(dashboard_file()):
        query = substitute(expr, variant if "$variant" in expr else ".*")
        series = observed.prometheus.client.query_range(
            query, observed.start, observed.end, SCRAPE_SECONDS
        )
        if "$variant" not in expr:  # a comparison panel: one series per variant
            series = [s for s in series if s.labels.get("variant") == variant]
        if not any(math.isfinite(v) for s in series for _, v in s.points):
            empty.append(f"{title}: {query}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_error_panel_tells_the_variants_apart(observed: Observed) -> None:
    """The error-ratio-by-code panel shows the challenger's 500s and not the champion's."""
    (expr,) = [e for t, e in targets(dashboard_file()) if t == "Error ratio by status code"]
    codes = {}
    for variant in VARIANTS:
        series = observed.prometheus.client.query_range(
            substitute(expr, variant), observed.start, observed.end, SCRAPE_SECONDS
        )
        codes[variant] = {s.labels["code"] for s in series if any(v > 0 for _, v in s.points)}
    assert codes == {"champion": {"400"}, "challenger": {"400", "500"}}


def test_picture_is_drawn_from_real_data(observed: Observed, tmp_path: Path) -> None:
    """The README's picture: every panel of the comparison row and of each variant's row drawn
    from the same queries over the load window (``ML_ENDPOINTS_DASHBOARD_PICTURE`` keeps it)."""
    out = Path(os.environ.get("ML_ENDPOINTS_DASHBOARD_PICTURE") or tmp_path / "dashboard.png")
    model = dashboard_file()
    drawn = render(
        model, observed.prometheus.client, MODEL, VARIANTS, observed.start, observed.end, out
    )
    panels = [p for p in model["panels"] if p["type"] != "row"]
    per_variant = [p for p in panels if "$variant" in json.dumps(p["targets"])]
    assert drawn == len(panels) - len(per_variant) + len(VARIANTS) * len(per_variant)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
