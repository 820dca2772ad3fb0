"""How far an observed false alarm rate may exceed the level before a test calls it a defect."""

from __future__ import annotations

from scipy import stats


def upper_tolerance(trials: int, rate: float) -> float:
    """The false alarm rate a test at level ``rate`` exceeds with probability < 0.001."""
    return float(stats.binom.ppf(0.999, trials, rate)) / trials
