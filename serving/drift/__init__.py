"""Drift detection: a reference profile, a streaming monitor and its per-window report.

Only NumPy is needed at serving time; SciPy (the benchmark's baseline) and pyarrow (the
``profile`` command's CSV/Parquet readers) come with the ``drift`` extra. Exports load lazily so
that ``ml-endpoints`` can register the ``profile`` command without importing NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.drift.counts import WindowCounts
    from serving.drift.joint import JointProfile
    from serving.drift.monitor import DriftMonitor
    from serving.drift.profile import DriftProfile, FeatureProfile
    from serving.drift.report import DriftReport, TestResult

_EXPORTS = {
    "DriftMonitor": "serving.drift.monitor",
    "DriftProfile": "serving.drift.profile",
    "DriftReport": "serving.drift.report",
    "FeatureProfile": "serving.drift.profile",
    "JointProfile": "serving.drift.joint",
    "TestResult": "serving.drift.report",
    "WindowCounts": "serving.drift.counts",
}
__all__ = [
    "DriftMonitor",
    "DriftProfile",
    "DriftReport",
    "FeatureProfile",
    "JointProfile",
    "TestResult",
    "WindowCounts",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'serving.drift' has no attribute {name!r}")
