"""One window's verdict: every test, the family-wise correction, and the JSON form."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from serving.drift.counts import WindowCounts
from serving.drift.joint import JOINT_NAME, JointProfile
from serving.drift.profile import OUTPUT_NAME, DriftProfile
from serving.drift.stats import fisher_exact, ks_from_counts, tarone_threshold


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test on one feature (or on the model output, feature ``__prediction__``).

    ``test`` is ``ks`` (numeric: binned two-sample Kolmogorov-Smirnov; statistic = largest CDF
    gap, effect size = mean CDF gap in quantile units), ``categories`` (exact per-category tests
    incl. an unseen bucket; statistic = largest change of a category's share, effect size = total
    variation distance), ``missing`` (exact test of the missing rate; statistic = the window's
    missing rate, effect size = its change from the reference) or ``joint`` (feature
    ``__joint__``: how the numeric features move together, :mod:`serving.drift.joint`; statistic
    and effect size are those of the KS test of its most significant per-row statistic, the
    p-value is Bonferroni over its statistics, listed in :attr:`DriftReport.joint_parts`).
    """

    feature: str
    test: str
    statistic: float
    p_value: float
    effect_size: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The verdict on one window. ``drift_detected`` is raised with probability <= ``alpha``
    when nothing drifted: a test is flagged when its p-value <= ``threshold`` (Bonferroni over
    the tests that can reject, after Tarone)."""

    drift_detected: bool
    window_rows: int
    alpha: float
    threshold: float
    tests: tuple[TestResult, ...]
    #: The joint test's statistics (``test`` = ``distance``, ``relation1``, ...) with their own
    #: KS p-values; ``drifted`` marks the one that flagged the joint entry. Not in the family:
    #: the ``__joint__`` entry of :attr:`tests` stands for them.
    joint_parts: tuple[TestResult, ...] = ()

    @property
    def features(self) -> dict[str, TestResult]:
        """Each feature's distribution test (``ks`` or ``categories``) by feature name, and the
        joint test as ``__joint__`` when the profile has one."""
        return {t.feature: t for t in self.tests if t.test != "missing"}

    @property
    def joint(self) -> TestResult | None:
        """The joint test, if the profile has one."""
        return next((t for t in self.tests if t.test == "joint"), None)

    @property
    def drifted_features(self) -> list[str]:
        """Names of features with at least one flagged test."""
        return sorted({t.feature for t in self.tests if t.drifted})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``GET /drift`` returns)."""
        return {
            "drift_detected": self.drift_detected,
            "window_rows": self.window_rows,
            "alpha": self.alpha,
            "threshold": self.threshold,
            "drifted_features": self.drifted_features,
            "tests": [asdict(t) for t in self.tests],
            "joint_parts": [asdict(t) for t in self.joint_parts],
        }


def evaluate(
    profile: DriftProfile, reference: WindowCounts, window: WindowCounts, alpha: float
) -> DriftReport:
    """Test ``window`` against ``reference`` (the profile's counts) at family-wise level alpha."""
    tested = profile.tested
    names: list[str] = []
    kinds: list[str] = []
    stats: list[np.ndarray] = []
    p_values: list[np.ndarray] = []
    min_ps: list[np.ndarray] = []
    effects: list[np.ndarray] = []
    w, r = window.matrix[: len(tested)], reference.matrix[: len(tested)]

    numeric = [t for t, f in enumerate(tested) if f.kind == "numeric"]
    if numeric:
        bins = np.asarray([tested[t].bins for t in numeric])
        d, p, effect = ks_from_counts(w[numeric, 1:], r[numeric, 1:], bins)
        present = w[numeric, 1:].sum(axis=1) > 0
        names += [tested[t].name for t in numeric]
        kinds += ["ks"] * len(numeric)
        stats.append(d)
        p_values.append(p)
        min_ps.append(np.where(present, 0.0, 1.0))
        effects.append(effect)

    for t, f in enumerate(tested):
        if f.kind != "categorical":
            continue
        wc, rc = w[t, 1 : 1 + f.bins], r[t, 1 : 1 + f.bins]
        n_w, n_r = int(wc.sum()), int(rc.sum())
        share_w, share_r = wc / max(n_w, 1), rc / max(n_r, 1)
        p_c, min_c = fisher_exact(wc, np.full_like(wc, n_w), wc + rc, np.full_like(wc, n_w + n_r))
        can_reject = min_c < 1.0
        k = max(int(can_reject.sum()), 1)
        names.append(f.name)
        kinds.append("categories")
        empty = n_w == 0
        stats.append(np.array([0.0 if empty else float(np.abs(share_w - share_r).max())]))
        p_values.append(np.array([min(1.0, k * float(p_c.min()))]))
        min_ps.append(np.array([min(1.0, k * float(min_c.min()))]))
        effects.append(np.array([0.0 if empty else 0.5 * float(np.abs(share_w - share_r).sum())]))

    totals_w, totals_r = w.sum(axis=1), r.sum(axis=1)
    p_m, min_m = np.ones(len(tested)), np.ones(len(tested))
    some = (w[:, 0] + r[:, 0]) > 0  # no missing value anywhere: nothing to test
    if some.any():
        p_m[some], min_m[some] = fisher_exact(
            w[some, 0], totals_w[some], w[some, 0] + r[some, 0], (totals_w + totals_r)[some]
        )
    rate_w = w[:, 0] / np.maximum(totals_w, 1)
    rate_r = r[:, 0] / np.maximum(totals_r, 1)
    names += [f.name for f in tested]
    kinds += ["missing"] * len(tested)
    stats.append(rate_w)
    p_values.append(p_m)
    min_ps.append(min_m)
    effects.append(np.where(totals_w > 0, rate_w - rate_r, 0.0))

    parts: list[tuple[str, float, float, float]] = []
    if profile.joint is not None:
        parts = _joint_parts(
            profile.joint, window.matrix[len(tested) :], reference.matrix[len(tested) :]
        )
        _, statistic, p_value, effect_size = min(parts, key=lambda part: part[2])
        names.append(JOINT_NAME)
        kinds.append("joint")
        stats.append(np.array([statistic]))
        p_values.append(np.array([min(1.0, len(parts) * p_value)]))  # Bonferroni inside
        min_ps.append(np.array([0.0 if window.rows else 1.0]))
        effects.append(np.array([effect_size]))

    p_all = np.concatenate(p_values)
    threshold = tarone_threshold(np.concatenate(min_ps), alpha)
    flagged = p_all <= threshold
    results = tuple(
        TestResult(name, kind, float(s), float(p), float(e), bool(f))
        for name, kind, s, p, e, f in zip(
            names,
            kinds,
            np.concatenate(stats),
            p_all,
            np.concatenate(effects),
            flagged,
            strict=True,
        )
    )
    joint_parts = tuple(
        TestResult(JOINT_NAME, name, d, p, e, len(parts) * p <= threshold)
        for name, d, p, e in parts
    )
    return DriftReport(bool(flagged.any()), window.rows, alpha, threshold, results, joint_parts)


def _joint_parts(
    joint: JointProfile, window: np.ndarray, reference: np.ndarray
) -> list[tuple[str, float, float, float]]:
    """Name, KS statistic, p-value and effect size of each of the joint test's statistics."""
    bins = np.asarray([s.bins for s in joint.statistics])
    d, p, effect = ks_from_counts(window[:, 1:], reference[:, 1:], bins)
    return list(zip(joint.names, d.tolist(), p.tolist(), effect.tolist(), strict=True))


__all__ = ["JOINT_NAME", "OUTPUT_NAME", "DriftReport", "TestResult", "evaluate"]
