"""Drift detection: a reference profile, a streaming monitor and its per-window report.

Only NumPy is needed at serving time; SciPy and pyarrow (extra ``drift``) are used by the
benchmark and the ``profile`` command's file readers.
"""

from serving.drift.counts import WindowCounts
from serving.drift.monitor import DriftMonitor
from serving.drift.profile import DriftProfile, FeatureProfile
from serving.drift.report import DriftReport, TestResult

__all__ = [
    "DriftMonitor",
    "DriftProfile",
    "DriftReport",
    "FeatureProfile",
    "TestResult",
    "WindowCounts",
]
