"""The joint test: shifts in how features move together, which per-feature tests cannot see.

A column shuffled by a pipeline bug, two sensors that stop agreeing, or segments mixed in new
proportions can leave every feature's marginal distribution as it was. The offline detectors
that see such shifts compare whole samples: alibi-detect's MMD and LSDD detectors (kernel
two-sample statistics, p-values by permutation or bootstrap over the stored reference and the
window) and its classifier detector (a model trained to tell reference from window), Evidently's
embedding drift methods (a domain classifier, MMD). Each needs the window's raw rows and work that
grows with the window and the reference (alibi-detect's online MMD and LSDD keep the window's
rows and their kernel values against the reference, with thresholds simulated for an expected
run time), so none fits a monitor whose state must stay a few count matrices, whatever the
window. NannyML's "data reconstruction drift" does fit: standardize the
features, fit a PCA on the reference, and watch the per-row reconstruction error; but it alarms
when the mean error leaves mean +- 3 standard deviations of reference chunks, a threshold with no
stated error rate.

What runs here reduces every row, as it arrives, to a few numbers whose reference distribution is
known, and tests those with the monitor's own binned two-sample KS machinery:

- **distance**: the row's squared distance from the reference's principal subspace (the
  components that hold ``VARIANCE_KEPT`` of the standardized variance), measured in units of the
  reference's spread along each remaining component (whitened, with a small ridge so that exact
  collinearities stay finite). A relation that breaks (a column shuffled, a correlation removed,
  noise on one feature) moves rows off the subspace along directions where the reference hardly
  varies, and the distance grows by orders of magnitude. Unlike NannyML's unwhitened error, the
  tightest relations weigh the most, which is where broken relations show first.
- **relation1..3**: the signed, whitened score of the row on each of the three reference
  components of least variance (the relations the features keep most tightly). A squared distance
  cannot see a shift *along* such a relation when the spread stays the same, e.g. two segments
  that sit on either side of it in new proportions, or one device reading a feature a little
  higher relative to the others; the signed scores see it as a change of location.

Each statistic is binned at the quantiles of its reference distribution, like a numeric feature,
so the state is a few more count rows and merging across workers still sums counts. The p-value
of the joint entry is the smallest of the statistics' KS p-values times their number (Bonferroni
inside the entry), and the entry is one more test in the window's family-wise correction, so a
window without drift still raises an alarm with probability at most alpha.

Calibration is honest: the profile's rows are split at random (seeded, so a profile is
reproducible) into a half that fits the standardization and the PCA and a held-out half whose
statistics form the reference distribution. Rows a PCA was fitted on sit closer to its subspace
than new rows do, so calibrating on them would raise false alarms; rows the PCA never saw are
exchangeable with a window's rows under no drift, so the two-sample test is valid at any window
size, like the per-feature KS tests.

Why the PCA's least-variance components rather than random projections: a shift that leaves the
marginals alone shows mostly along directions in which the standardized features vary little
together (a direction of large variance carries much of many features' spread, so moving rows
along it moves their marginals). Random directions weigh mostly the high-variance part, where
the per-feature tests already look; the minor components are the low-variance directions
themselves, and the reference tells which they are.

When it helps and when it does not (measured in ``bench/drift/README.md``):

- It helps when features are correlated: the stronger the relations in the reference, the
  smaller the break it sees, long before any marginal moves. It also adds power on ordinary
  shifts that break relations (noise added to some features).
- It cannot help when features are nearly independent (no relation to break), for shifts that
  move rows within the principal subspace (those change marginals, which the per-feature tests
  see), or for a segment mix along a direction of moderate variance that is neither one of the
  three tightest relations nor a change of spread.
- Only numeric features take part (categorical codes have no meaningful geometry; their own exact
  tests remain); missing values are imputed with the reference mean, as NannyML does, which is
  valid because the held-out rows went through the same imputation. The held-out half limits the
  power: a reference of m rows tests like a sample of m/2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from serving.drift.profile import FeatureProfile

JOINT_NAME = "__joint__"
#: Share of the standardized variance the principal subspace keeps (NannyML keeps 65 %; more keeps
#: the distance on the tight relations, where joint shifts show first).
VARIANCE_KEPT = 0.9
#: Ridge added to each component's variance before whitening, relative to the mean variance.
RIDGE = 1e-3
#: Tightest relations whose signed scores are tested.
RELATIONS = 3
#: Share of the profile's rows that fit the PCA; the rest calibrate the statistics.
FIT_SHARE = 0.5
#: Fewer reference rows than this (or fewer than two usable numeric features): no joint test.
MIN_ROWS = 20
SEED = 0


class JointProfile:
    """The fitted transform and the held-out reference distribution of each statistic.

    ``columns`` are the feature indices taking part; a row's statistics are computed from
    ``(x[columns] - mean) @ projection``: the first statistic is the squared norm of that
    vector, the others are its last ``relations`` entries, tightest relation first.
    ``statistics`` hold each statistic's reference distribution, from held-out rows;
    ``fitted_rows`` is how many rows fitted the transform.
    """

    def __init__(
        self,
        columns: Sequence[int],
        mean: np.ndarray,
        projection: np.ndarray,
        relations: int,
        statistics: Sequence[FeatureProfile],
        fitted_rows: int,
    ) -> None:
        self.columns = tuple(columns)
        self.mean = mean
        self.projection = projection
        self.relations = relations
        self.statistics = tuple(statistics)
        self.fitted_rows = fitted_rows
        every = self.columns == tuple(range(len(self.columns)))
        self._index = None if every else np.asarray(self.columns, dtype=np.intp)
        self._tightest = np.arange(projection.shape[1] - 1, -1, -1)[:relations]

    @property
    def names(self) -> list[str]:
        """The statistics' names, in column order of :meth:`compute`."""
        return ["distance", *(f"relation{i + 1}" for i in range(self.relations))]

    @classmethod
    def fit(
        cls, rows: np.ndarray, columns: Sequence[int], max_bins: int, seed: int = SEED
    ) -> JointProfile | None:
        """Fit on a random ``FIT_SHARE`` of ``rows``, calibrate on the rest; ``None`` when
        there are too few rows or fewer than two usable columns."""
        from serving.drift.profile import fit_numeric

        if rows.shape[0] < MIN_ROWS or len(columns) < 2:
            return None
        order = np.random.default_rng(seed).permutation(rows.shape[0])
        cut = round(rows.shape[0] * FIT_SHARE)
        fitting, held_out = rows[order[:cut]], rows[order[cut:]]
        values = fitting[:, list(columns)]
        present = ~np.isnan(values)
        count = present.sum(axis=0)
        safe = np.maximum(count, 1)
        mean = np.where(present, values, 0.0).sum(axis=0) / safe
        spread = np.sqrt(np.where(present, (values - mean) ** 2, 0.0).sum(axis=0) / safe)
        usable = (count > 1) & (spread > 0)
        if usable.sum() < 2:
            return None
        kept = [c for c, u in zip(columns, usable, strict=True) if u]
        mean, spread = mean[usable], spread[usable]
        z = np.nan_to_num((values[:, usable] - mean) / spread, nan=0.0)
        variance, vectors = np.linalg.eigh(z.T @ z / max(z.shape[0] - 1, 1))
        variance, vectors = variance[::-1].clip(min=0.0), vectors[:, ::-1]
        total = variance.sum()
        share = np.cumsum(variance) / total if total > 0 else np.ones_like(variance)
        kept_components = min(int(np.searchsorted(share, VARIANCE_KEPT)) + 1, len(kept) - 1)
        whiten = np.sqrt(variance[kept_components:] + RIDGE * max(variance.mean(), 1e-12))
        projection = vectors[:, kept_components:] / whiten / spread[:, None]
        relations = min(RELATIONS, projection.shape[1])
        partial = cls(tuple(kept), mean, projection, relations, (), cut)
        reference = partial.compute(held_out)
        statistics = tuple(
            fit_numeric(f"{JOINT_NAME}{name}", reference[:, i], max_bins)
            for i, name in enumerate(partial.names)
        )
        return cls(tuple(kept), mean, projection, relations, statistics, cut)

    def compute(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Each row's statistics, shape ``(rows, 1 + relations)`` (written into ``out`` if
        given); missing values count as the reference mean. ``rows`` has at least the
        features up to the last of :attr:`columns`."""
        if self._index is None:
            centered = rows[:, : len(self.columns)] - self.mean
        else:
            centered = rows[:, self._index] - self.mean
        centered[np.isnan(centered)] = 0.0
        scores = centered @ self.projection
        if out is None:
            out = np.empty((rows.shape[0], 1 + self.relations))
        np.einsum("ij,ij->i", scores, scores, out=out[:, 0])
        out[:, 1:] = scores[:, self._tightest]
        return out

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able document (part of the profile file)."""
        from serving.drift.profile import feature_dict

        return {
            "columns": list(self.columns),
            "mean": self.mean.tolist(),
            "projection": self.projection.tolist(),
            "relations": self.relations,
            "fitted_rows": self.fitted_rows,
            "statistics": [feature_dict(s) for s in self.statistics],
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any], n_features: int) -> JointProfile:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming what is wrong."""
        from serving.drift.profile import feature_from

        columns = tuple(int(c) for c in document["columns"])
        mean = np.asarray(document["mean"], dtype=np.float64)
        projection = np.asarray(document["projection"], dtype=np.float64)
        relations = int(document["relations"])
        statistics = tuple(feature_from(s) for s in document["statistics"])
        if not all(0 <= c < n_features for c in columns) or len(set(columns)) != len(columns):
            raise ValueError(f"joint: columns must be distinct indices below {n_features}")
        if (
            projection.ndim != 2
            or projection.shape[0] != len(columns)
            or mean.shape != (len(columns),)
            or not 0 <= relations <= projection.shape[1]
        ):
            raise ValueError(
                "joint: need one mean and one projection row per column, and at most as many "
                "relations as projection columns"
            )
        if len(statistics) != 1 + relations or any(s.kind != "numeric" for s in statistics):
            raise ValueError("joint: need one numeric statistic for the distance and per relation")
        return cls(columns, mean, projection, relations, statistics, int(document["fitted_rows"]))
