"""The statistical tests, in plain NumPy (no SciPy needed at serving time).

Every p-value here is valid for any window size, however small: it never falls below the exact
one it stands in for by more than the approximation error of Stephens' formula (about 1 %, and
the binning makes the KS test conservative on top of that). Nothing relies on large-sample
chi-squared approximations, which are badly anti-conservative with small expected counts.
"""

from __future__ import annotations

import math

import numpy as np

_SERIES_TERMS = np.arange(1, 101, dtype=np.float64)
_SIGNS = np.where(_SERIES_TERMS % 2 == 1, 1.0, -1.0)
_SMALL_LOG_FACTORIALS = np.array([math.lgamma(k + 1.0) for k in range(64)])


def kolmogorov_sf(lam: np.ndarray) -> np.ndarray:
    """P(K > lam) for the Kolmogorov distribution (the limit of sqrt(n) * D_n)."""
    lam = np.asarray(lam, dtype=np.float64)
    out = np.ones_like(lam)
    big = lam > 0.2
    if big.any():
        x = lam[big][:, None]
        series = 2.0 * (_SIGNS * np.exp(-2.0 * _SERIES_TERMS**2 * x * x)).sum(axis=1)
        out[big] = series
    return np.clip(out, 0.0, 1.0)  # type: ignore[no-any-return]


def ks_from_counts(
    window: np.ndarray, reference: np.ndarray, bins: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov tests on binned data, one per row of the count matrices.

    ``window`` and ``reference`` are ``(tests, bins)`` counts over the same ordered bins;
    ``bins[t]`` (default: all columns) is how many leading columns test ``t`` uses.
    Returns the statistic D (the largest gap between the two CDFs at the bin edges), its
    p-value (Stephens' finite-sample form of the Kolmogorov distribution with the two-sample
    effective size nm/(n+m)) and an effect size: the mean CDF gap over the reference quantile
    edges, i.e. by how many quantiles (as a fraction) values moved on average.
    """
    n = window.sum(axis=1).astype(np.float64)
    m = reference.sum(axis=1).astype(np.float64)
    safe_n = np.maximum(n, 1.0)
    safe_m = np.maximum(m, 1.0)
    gap = np.abs(
        np.cumsum(window, axis=1)[:, :-1] / safe_n[:, None]
        - np.cumsum(reference, axis=1)[:, :-1] / safe_m[:, None]
    )
    empty = (n == 0) | (m == 0)
    statistic = np.where(empty, 0.0, gap.max(axis=1, initial=0.0))
    used = np.full(window.shape[0], window.shape[1]) if bins is None else np.asarray(bins)
    inside = np.arange(gap.shape[1])[None, :] < (used - 1)[:, None]
    effect_sum = np.where(inside, gap, 0.0).sum(axis=1)
    effect = np.where(empty, 0.0, effect_sum / np.maximum(used - 1, 1))
    en = np.sqrt(safe_n * safe_m / (safe_n + safe_m))
    p_value = np.where(empty, 1.0, kolmogorov_sf((en + 0.12 + 0.11 / en) * statistic))
    return statistic, p_value, effect


def log_factorial(k: np.ndarray) -> np.ndarray:
    """log(k!) for non-negative integers: a table below 64, Stirling's series above."""
    k = np.asarray(k, dtype=np.float64)
    small = k < 64
    out = np.empty_like(k)
    out[small] = _SMALL_LOG_FACTORIALS[k[small].astype(np.int64)]
    x = k[~small] + 1.0
    out[~small] = (
        (x - 0.5) * np.log(x) - x + 0.5 * math.log(2 * math.pi) + 1 / (12 * x) - 1 / (360 * x**3)
    )
    return out


def fisher_exact(
    hits: np.ndarray, draws: np.ndarray, successes: np.ndarray, population: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher's exact test of 2x2 tables, vectorised: window hits vs reference hits.

    The window drew ``draws`` of ``population`` rows, of which ``successes`` are hits (in window
    and reference together); ``hits`` were in the window. Returns the two-sided p-value (twice the
    smaller exact tail, capped at 1) and the smallest p-value these margins could ever give (for
    Tarone's correction: a test that cannot reject must not cost the others power).
    """
    hits, draws, successes, population = (
        np.asarray(a, dtype=np.int64) for a in (hits, draws, successes, population)
    )
    low = np.maximum(0, draws + successes - population)
    high = np.minimum(draws, successes)
    width = int((high - low).max(initial=0)) + 1
    support = low[:, None] + np.arange(width)[None, :]
    valid = support <= high[:, None]
    k = np.where(valid, support, low[:, None])
    log_pmf = (
        log_factorial(successes)[:, None]
        - log_factorial(k)
        - log_factorial(successes[:, None] - k)
        + log_factorial(population - successes)[:, None]
        - log_factorial(draws[:, None] - k)
        - log_factorial((population - successes - draws)[:, None] + k)
        - log_factorial(population)[:, None]
        + log_factorial(draws)[:, None]
        + log_factorial(population - draws)[:, None]
    )
    pmf = np.where(valid, np.exp(log_pmf), 0.0)
    pmf /= np.maximum(pmf.sum(axis=1, keepdims=True), 1e-300)
    lower = np.where(support <= hits[:, None], pmf, 0.0).sum(axis=1)
    upper = np.where(support >= hits[:, None], pmf, 0.0).sum(axis=1)
    p_value = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    last = np.take_along_axis(pmf, (high - low)[:, None], axis=1)[:, 0]
    min_p = np.minimum(1.0, 2.0 * np.minimum(pmf[:, 0], last))
    min_p = np.where(high == low, 1.0, min_p)
    return p_value, min_p


def tarone_threshold(min_p: np.ndarray, alpha: float) -> float:
    """Tarone's Bonferroni threshold for discrete tests.

    The smallest ``k`` such that at most ``k`` tests could reach a p-value <= alpha/k; only those
    can reject, so dividing alpha by ``k`` (not by the number of all tests) keeps the family-wise
    error rate <= alpha. With continuous tests (min p = 0) this is plain Bonferroni.
    """
    total = len(min_p)
    if total == 0:
        return alpha
    k = np.arange(1, total + 1)
    reachable = np.searchsorted(np.sort(min_p), alpha / k, side="right")
    return alpha / int(k[np.argmax(reachable <= k)])
