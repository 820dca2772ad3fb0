"""A picture of the Grafana dashboard drawn from a real Prometheus: every panel's queries, as the
dashboard file holds them, evaluated over a time range and plotted with matplotlib in the
dashboard's layout (the comparison row, then one row per variant).

No Grafana server can be installed here (Debian has no package, and Grafana's own builds are
downloads), so this stands in for a screenshot; the data and the queries are the real ones.
matplotlib is a ``dev`` extra, imported only here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.monitoring.prometheus import PrometheusClient, Series

_BACKGROUND, _PANEL, _TEXT, _GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
_COLORS = ("#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9")
_UNITS = {"reqps": "req/s", "percentunit": "%", "s": "ms", "short": ""}


def substitute(expr: str, model: str, variant: str, rate_interval: str) -> str:
    """The query Grafana sends for one variant (``$namespace`` = All)."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$namespace", ".*")
        .replace("$model", model)
        .replace("$variant", variant)
    )


def render(
    dashboard: dict[str, Any],
    client: PrometheusClient,
    model: str,
    variants: Sequence[str],
    start: float,
    end: float,
    out: Path,
    rate_interval: str = "4s",
) -> int:
    """Draw ``dashboard`` for ``model`` over ``[start, end]`` into ``out`` (PNG); returns the
    number of panels drawn with data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    row_y = next(p["gridPos"]["y"] for p in dashboard["panels"] if p["type"] == "row")
    comparison = [p for p in panels if p["gridPos"]["y"] < row_y]
    per_variant = [p for p in panels if p["gridPos"]["y"] > row_y]
    layout: list[tuple[str, list[dict[str, Any]], str]] = [
        ("Variants compared", comparison, ".*")
    ] + [(f"Variant {v}", per_variant, v) for v in variants]
    rows = _rows(layout)
    figure = plt.figure(figsize=(24, 3.1 * len(rows)), facecolor=_BACKGROUND)
    figure.suptitle(
        f"{dashboard['title']} (model {model}; Prometheus data, matplotlib rendering)",
        color=_TEXT,
        fontsize=16,
        x=0.01,
        y=0.995,
        ha="left",
    )
    grid = figure.add_gridspec(len(rows), 24, hspace=0.7, wspace=0.9, top=0.96, bottom=0.02)
    drawn = 0
    for row, (heading, placed, variant) in enumerate(rows):
        for x, panel in placed:
            axes = figure.add_subplot(grid[row, x : x + panel["gridPos"]["w"]])
            series = [
                (target, s)
                for target in panel["targets"]
                for s in client.query_range(
                    substitute(target["expr"], model, variant, rate_interval), start, end, 1
                )
            ]
            if variant == ".*":  # comparison panels: one line per variant
                series = [(t, s) for t, s in series if s.labels.get("variant") in variants]
            drawn += _draw(axes, panel, series, heading, start)
    figure.savefig(out, dpi=72, facecolor=_BACKGROUND, bbox_inches="tight")
    plt.close(figure)
    return drawn


def _rows(
    layout: list[tuple[str, list[dict[str, Any]], str]],
) -> list[tuple[str, list[tuple[int, dict[str, Any]]], str]]:
    """Grafana rows of panels (by their y) as ``(heading, [(x, panel)], variant)``."""
    out = []
    for heading, panels, variant in layout:
        by_y: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for panel in panels:
            by_y.setdefault(panel["gridPos"]["y"], []).append((panel["gridPos"]["x"], panel))
        out += [(heading, placed, variant) for _, placed in sorted(by_y.items())]
    return out


def _draw(
    axes: Any, panel: dict[str, Any], series: list[tuple[dict[str, Any], Series]], heading: str,
    start: float,
) -> int:  # fmt: skip
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    axes.set_facecolor(_PANEL)
    for spine in axes.spines.values():
        spine.set_color(_GRID)
    axes.tick_params(colors=_TEXT, labelsize=8)
    axes.set_title(f"{heading}: {panel['title']}", color=_TEXT, fontsize=10, loc="left")
    scale = 100 if unit == "percentunit" else 1000 if unit == "s" else 1
    finite = [
        (t, s, [(x - start, v * scale) for x, v in s.points if math.isfinite(v)]) for t, s in series
    ]
    finite = [(t, s, p) for t, s, p in finite if p]
    if not finite:
        axes.text(0.5, 0.5, "no data", color=_TEXT, ha="center", transform=axes.transAxes)
        return 0
    if panel["type"] == "timeseries":
        for i, (target, s, points) in enumerate(finite):
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, color=_COLORS[i % len(_COLORS)], label=_legend(target, s))
        axes.grid(color=_GRID, linewidth=0.5)
        axes.set_xlabel("seconds", color=_TEXT, fontsize=8)
        axes.set_ylabel(_UNITS.get(unit, unit), color=_TEXT, fontsize=8)
        axes.legend(fontsize=7, facecolor=_PANEL, labelcolor=_TEXT, edgecolor=_GRID)
    elif panel["type"] == "bargauge":
        latest = sorted((points[-1][1], _legend(t, s)) for t, s, points in finite)[:12]
        values, labels = zip(*latest, strict=True)
        axes.barh(range(len(values)), values, color=[_bar(v) for v in values])
        axes.set_yticks(range(len(values)), labels, fontsize=7, color=_TEXT)
        axes.set_xlim(0, 1)
        axes.invert_yaxis()
    else:  # stat: the last value of each target
        for i, (t, s, points) in enumerate(finite):
            value = _stat(panel, points[-1][1])
            color = _COLORS[4] if value == "DRIFT" else _COLORS[0]
            y = 0.5 + (len(finite) - 1) * 0.15 - i * 0.3
            axes.text(0.5, y, f"{value} {_legend(t, s)}", color=color, fontsize=13,
                      ha="center", va="center", transform=axes.transAxes)  # fmt: skip
        axes.set_xticks([])
        axes.set_yticks([])
    return 1


def _legend(target: dict[str, Any], series: Series) -> str:
    legend: str = target.get("legendFormat", "")
    for key, value in series.labels.items():
        legend = legend.replace(f"{{{{{key}}}}}", value)
    return legend


def _stat(panel: dict[str, Any], value: float) -> str:
    for mapping in panel["fieldConfig"]["defaults"].get("mappings", []):
        shown = mapping["options"].get(f"{value:g}")
        if shown:
            return str(shown["text"])
    return f"{value:g}"


def _bar(value: float) -> str:
    return _COLORS[4] if value < 0.05 else _COLORS[0]
