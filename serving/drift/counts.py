"""Window counts: rows per bin per feature, the only state a drift monitor keeps.

Counts are additive, so windows from several workers or replicas merge by summing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.drift.profile import DriftProfile, FeatureProfile


@dataclass(slots=True)
class WindowCounts:
    """``matrix[t, 0]`` = missing values of tested distribution ``t``, ``matrix[t, 1 + b]`` =
    values in bin ``b``; ``rows`` = rows counted. Tested distributions are the profile's features
    in order, then its output if profiled, then the joint test's statistics if profiled."""

    matrix: np.ndarray
    rows: int = 0

    def __add__(self, other: WindowCounts) -> WindowCounts:
        if self.matrix.shape != other.matrix.shape:
            raise ValueError(
                f"cannot merge counts of shape {other.matrix.shape} into {self.matrix.shape}: "
                "they come from different profiles"
            )
        return WindowCounts(self.matrix + other.matrix, self.rows + other.rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for shipping counts between replicas."""
        return {"rows": self.rows, "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> WindowCounts:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(document["matrix"], dtype=np.int64), int(document["rows"]))


class Binner:
    """Turns batches of rows (and outputs) into :class:`WindowCounts` for one profile.

    Numeric features and the joint test's per-row statistics are binned together in one binary
    search; categorical features by a sorted lookup each.
    """

    def __init__(self, profile: DriftProfile) -> None:
        self.profile = profile
        self._joint = profile.joint
        joint = self._joint.statistics if self._joint is not None else ()
        rows = (*profile.tested, *joint)
        self.width = 1 + max(f.bins for f in rows)
        self.shape = (len(rows), self.width)
        numeric = [j for j, f in enumerate(profile.features) if f.kind == "numeric"]
        self._numeric = np.asarray(numeric, dtype=np.intp)
        self._all_numeric = len(numeric) == profile.n_features
        self._search = _GlobalSearch(
            [profile.features[j].edges for j in numeric] + [s.edges for s in joint]
        )
        first_joint = len(profile.tested)
        slots = np.concatenate([self._numeric, first_joint + np.arange(len(joint))])
        self._numeric_offsets = slots.astype(np.intp) * self.width
        self._categorical = [
            (j, np.asarray(f.categories, dtype=np.float64))
            for j, f in enumerate(profile.features)
            if f.kind == "categorical"
        ]
        self._output = profile.output
        self._output_lookup: dict[str, int] = (
            {
                str(float(c)) if isinstance(c, int | float) else str(c): i
                for i, c in enumerate(profile.output.categories)
            }
            if profile.output is not None and profile.output.kind == "categorical"
            else {}
        )

    def reference(self) -> WindowCounts:
        """The profile's own counts, in the same layout (the joint statistics' rows hold their
        held-out reference counts)."""
        matrix = np.zeros(self.shape, dtype=np.int64)
        joint = self._joint.statistics if self._joint is not None else ()
        for t, f in enumerate((*self.profile.tested, *joint)):
            matrix[t, 0] = f.missing
            matrix[t, 1 : 1 + f.bins] = f.counts
        return WindowCounts(matrix, self.profile.rows)

    def empty(self) -> WindowCounts:
        """Counts of no rows (int32: half the memory; a block never holds 2**31 rows)."""
        return WindowCounts(np.zeros(self.shape, dtype=np.int32), 0)

    def count(self, X: np.ndarray, outputs: np.ndarray | None = None) -> WindowCounts:
        """Counts of the rows of ``X`` (2-D float, NaN = missing) and their outputs."""
        counts = self.empty()
        self.add(counts, X, outputs)
        return counts

    def add(self, counts: WindowCounts, X: np.ndarray, outputs: np.ndarray | None = None) -> None:
        """Add the rows of ``X`` (and their outputs) to ``counts`` in place."""
        self.add_slots(counts, self.slots(X), outputs)

    def slots(self, X: np.ndarray) -> np.ndarray:
        """Where each row of ``X`` (2-D float, NaN = missing) counts: ``(rows, k)`` positions in
        a flattened count matrix, one per numeric feature, categorical feature and joint
        statistic. Needs no counts, so it can run outside a lock and once for a batch that
        spans several blocks."""
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.profile.n_features:
            raise ValueError(
                f"expected rows with {self.profile.n_features} features, got shape {rows.shape}"
            )
        parts = []
        if self._numeric_offsets.size:
            if self._joint is None:
                values = rows if self._all_numeric else rows[:, self._numeric]
            else:
                values = np.empty((rows.shape[0], self._numeric_offsets.size))
                values[:, : self._numeric.size] = (
                    rows if self._all_numeric else rows[:, self._numeric]
                )
                self._joint.compute(rows, out=values[:, self._numeric.size :])
            slot = 1 + self._search.bins(values)
            slot[np.isnan(values)] = 0
            parts.append(slot + self._numeric_offsets)
        for j, categories in self._categorical:
            parts.append((j * self.width + _category_slots(rows[:, j], categories))[:, None])
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    def add_slots(
        self, counts: WindowCounts, slots: np.ndarray, outputs: np.ndarray | None = None
    ) -> None:
        """Add rows given by their :meth:`slots` (and their outputs) to ``counts`` in place."""
        _accumulate(counts.matrix.reshape(-1), slots.ravel())
        if self._output is not None and outputs is not None:
            target = counts.matrix[self.profile.n_features]
            self._count_output(target, self._output, np.asarray(outputs))
        counts.rows += slots.shape[0]

    def _count_output(
        self, target: np.ndarray, profile: FeatureProfile, values: np.ndarray
    ) -> None:
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            return  # multi-output models: only 1-D outputs are profiled
        if profile.kind == "numeric":
            numbers = values.astype(np.float64)
            slot = 1 + np.searchsorted(np.asarray(profile.edges), numbers, side="right")
            slot[np.isnan(numbers)] = 0
            target += np.bincount(slot, minlength=target.size)[: target.size]
            return
        unseen = 1 + len(profile.categories)
        labels, counts = np.unique(_label_keys(values), return_counts=True)
        for label, n in zip(labels.tolist(), counts.tolist(), strict=True):
            index = self._output_lookup.get(label)
            target[unseen if index is None else 1 + index] += n


def _label_keys(values: np.ndarray) -> np.ndarray:
    """Output labels as lookup keys: numbers as their float text ("1.0"), anything else as text."""
    if np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        return values.astype(np.float64).astype(str)
    return values.astype(str)


def _accumulate(flat: np.ndarray, index: np.ndarray) -> None:
    """``flat[i] += 1`` for every ``i`` in ``index``: scattered for few, a histogram for many."""
    if index.size * 8 < flat.size:
        np.add.at(flat, index, flat.dtype.type(1))  # a Python 1 would cost a slow cast
    else:
        flat += np.bincount(index, minlength=flat.size)


def _category_slots(column: np.ndarray, categories: np.ndarray) -> np.ndarray:
    index = np.searchsorted(categories, column)
    clipped = np.minimum(index, max(len(categories) - 1, 0))
    known = (
        (index < len(categories)) & (categories[clipped] == column)
        if len(categories)
        else np.zeros(column.shape, dtype=bool)
    )
    slot = np.where(known, 1 + index, 1 + len(categories))
    slot[np.isnan(column)] = 0
    return slot


class _GlobalSearch:
    """Bins every numeric feature of a batch with ONE binary search.

    Feature ``f``'s values and edges are clipped to ``[first edge - span, last edge]`` and mapped
    by the same increasing affine map into ``[2f, 2f + 1]``, so all features' edges form one
    sorted array. Rounding is monotone, so the only possible error is a value just below an edge
    that maps onto it; one comparison against the raw edge corrects that, so bins are exact. A
    feature whose mapped edges would collide is searched on its own.
    """

    def __init__(self, edges: list[tuple[float, ...]]) -> None:
        count = len(edges)
        self._low, self._high = np.zeros(count), np.zeros(count)
        self._scale = np.ones(count)
        self._offsets = 2.0 * np.arange(count)
        keys: list[np.ndarray] = []
        raw: list[np.ndarray] = []
        starts: list[int] = []
        self._own: list[tuple[int, np.ndarray]] = []
        for f, cut in enumerate(edges):
            starts.append(sum(len(k) for k in keys))
            if not cut:
                continue
            lowest, highest = cut[0], cut[-1]
            span = max(highest - lowest, 1.0)
            self._low[f], self._high[f] = lowest - span, highest
            self._scale[f] = 1.0 / (highest - lowest + span)
            array = np.asarray(cut)
            mapped = (array - self._low[f]) * self._scale[f] + self._offsets[f]
            if np.all(np.diff(mapped) > 0):
                keys.append(mapped)
                raw.append(array)
            else:
                self._own.append((f, array))
        self._keys = np.concatenate(keys) if keys else np.zeros(0)
        self._raw = np.concatenate([[-np.inf], *raw])  # index shifted by one: raw[i+1] = key i
        self._starts = np.asarray(starts, dtype=np.intp)

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index (number of edges <= value) of every entry of ``(rows, features)``."""
        clipped = np.minimum(np.maximum(values, self._low), self._high)  # np.clip: 40 us slower
        mapped = (clipped - self._low) * self._scale + self._offsets
        found = np.searchsorted(self._keys, mapped, side="right")
        out: np.ndarray = found - self._starts
        # A value just below an edge may have been rounded onto it: move it back one bin.
        out -= (out > 0) & (self._raw[found] > values)
        for f, cut in self._own:
            out[:, f] = np.searchsorted(cut, values[:, f], side="right")
        return out
