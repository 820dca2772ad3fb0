"""The statistical building blocks against SciPy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from serving.drift.stats import fisher_exact, kolmogorov_sf, ks_from_counts, tarone_threshold


def test_kolmogorov_sf_matches_scipy() -> None:
    lam = np.linspace(0.05, 3.0, 60)
    np.testing.assert_allclose(kolmogorov_sf(lam), stats.kstwobign.sf(lam), atol=1e-12)


@pytest.mark.parametrize(("n", "m"), [(10, 569), (20, 178), (100, 300), (1000, 1797)])
def test_ks_p_value_is_never_much_below_the_exact_one(n: int, m: int) -> None:
    """Binned KS with Stephens' p-value vs scipy's exact ks_2samp on the same bin indices."""
    rng = np.random.default_rng(n)
    for _ in range(20):
        window = rng.integers(0, 40, n) + (rng.random() < 0.5)
        reference = rng.integers(0, 40, m)
        w = np.bincount(window, minlength=41)[None, :]
        r = np.bincount(reference, minlength=41)[None, :]
        d, p, _ = ks_from_counts(w, r)
        exact = stats.ks_2samp(window, reference, method="exact")
        assert d[0] == pytest.approx(exact.statistic)
        assert p[0] >= 0.97 * exact.pvalue or exact.pvalue < 1e-12


def test_ks_effect_size_is_the_mean_cdf_gap() -> None:
    w = np.array([[0, 10, 0, 0]])
    r = np.array([[5, 5, 0, 0]])
    d, _, effect = ks_from_counts(w, r, np.array([2]))
    assert d[0] == pytest.approx(0.5)
    assert effect[0] == pytest.approx(0.5)  # one edge between the two used bins, gap 0.5


def test_ks_on_empty_window_is_no_evidence() -> None:
    d, p, effect = ks_from_counts(np.zeros((1, 5), int), np.ones((1, 5), int))
    assert (d[0], p[0], effect[0]) == (0.0, 1.0, 0.0)


def test_fisher_exact_matches_scipy_hypergeometric_tails() -> None:
    rng = np.random.default_rng(0)
    draws = rng.integers(5, 300, 200)
    reference = rng.integers(5, 2000, 200)
    successes = np.minimum(rng.integers(0, 60, 200), draws + reference)
    population = draws + reference
    lo = np.maximum(0, draws + successes - population)
    hi = np.minimum(draws, successes)
    hits = lo + (rng.random(200) * (hi - lo + 1)).astype(int)
    p, min_p = fisher_exact(hits, draws, successes, population)
    h = stats.hypergeom(population, successes, draws)
    expected = np.minimum(1.0, 2 * np.minimum(h.cdf(hits), h.sf(hits - 1)))
    np.testing.assert_allclose(p, expected, rtol=1e-6, atol=1e-12)
    floor = np.minimum(1.0, 2 * np.minimum(h.pmf(lo), h.pmf(hi)))
    np.testing.assert_allclose(min_p, np.where(hi == lo, 1.0, floor), rtol=1e-6, atol=1e-12)


def test_fisher_exact_large_counts_use_stirling_accurately() -> None:
    p, _ = fisher_exact(np.array([130]), np.array([1000]), np.array([1100]), np.array([10000]))
    h = stats.hypergeom(10000, 1100, 1000)
    assert p[0] == pytest.approx(2 * min(h.cdf(130), h.sf(129)), rel=1e-6)


def test_tarone_ignores_tests_that_cannot_reject() -> None:
    assert tarone_threshold(np.zeros(30), 0.05) == pytest.approx(0.05 / 30)
    min_p = np.array([0.0] * 10 + [1.0] * 20)  # 20 missing-rate tests with no missing values
    assert tarone_threshold(min_p, 0.05) == pytest.approx(0.05 / 10)
    assert tarone_threshold(np.array([]), 0.05) == 0.05
