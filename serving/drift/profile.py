"""The reference profile: what "no drift" looks like, fitted once on training data.

Per numeric feature: bin edges at the reference quantiles, at the minimum and just above the
maximum (so values outside the training range fall in bins of their own), and the reference rows
per bin.
Per categorical feature: the reference categories and their counts, plus an "unseen" bucket.
Per feature: the number of missing (NaN) values. Optionally the same for the model's outputs.
Jointly over the numeric features: the transform and held-out reference distributions of the joint
test (:mod:`serving.drift.joint`).
Saved as JSON; counts (not just proportions) are kept because the tests are two-sample tests that
account for the reference being a finite sample. Files written before the joint test existed
have no ``joint`` entry; they load, and the monitor runs without the joint test.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from serving.drift.joint import JointProfile

FORMAT = "ml-endpoints/drift-profile"
FORMAT_VERSION = 1
MAX_BINS = 256
#: The last edge is this far above the maximum, relative to the feature's scale.
ABOVE_MAX = 1e-9
OUTPUT_NAME = "__prediction__"
Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    """One feature's reference distribution.

    Numeric: ``edges`` are increasing cut points; a value v falls in bin ``#(edges <= v)``.
    Categorical: ``categories`` are the known values (sorted); the last bin is "unseen".
    ``counts`` are reference rows per bin, ``missing`` the reference rows with no value.
    """

    name: str
    kind: Kind
    counts: tuple[int, ...]
    missing: int
    edges: tuple[float, ...] = ()
    categories: tuple[float | str, ...] = ()

    @property
    def bins(self) -> int:
        """Number of value bins (the missing slot not included)."""
        return len(self.counts)


class DriftProfile:
    """Reference distributions of every feature (and optionally of the model's outputs)."""

    def __init__(
        self,
        features: Sequence[FeatureProfile],
        rows: int,
        output: FeatureProfile | None = None,
        joint: JointProfile | None = None,
    ) -> None:
        if not features:
            raise ValueError("a drift profile needs at least one feature")
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.features = tuple(features)
        self.rows = rows
        self.output = output
        self.joint = joint

    @property
    def feature_names(self) -> list[str]:
        """The features' names, in column order."""
        return [f.name for f in self.features]

    @property
    def n_features(self) -> int:
        """Number of input columns the profile expects."""
        return len(self.features)

    @property
    def tested(self) -> tuple[FeatureProfile, ...]:
        """Every distribution the monitor tests: the features, then the output if profiled."""
        return self.features if self.output is None else (*self.features, self.output)

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        X: Any,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[int | str] | None = None,
        *,
        outputs: Any = None,
        max_bins: int = MAX_BINS,
        joint: bool = True,
    ) -> DriftProfile:
        """Profile the reference rows ``X`` (2-D, numbers, NaN = missing).

        ``categorical`` names the categorical columns by index or name; ``outputs`` are the
        model's predictions for ``X`` (labels are profiled as categories, numbers as numeric);
        ``joint=False`` leaves out the joint test's reference.
        """
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise ValueError(f"X must be a non-empty 2-D array, got shape {rows.shape}")
        if max_bins < 2:
            raise ValueError(f"max_bins must be >= 2, got {max_bins}")
        names = _names(feature_names, rows.shape[1])
        chosen = _categorical_indices(categorical, names)
        features = [
            _fit_categorical(name, rows[:, j])
            if j in chosen
            else fit_numeric(name, rows[:, j], max_bins)
            for j, name in enumerate(names)
        ]
        output = None
        if outputs is not None:
            values = np.asarray(outputs)
            if values.ndim == 2 and values.shape[1] == 1:
                values = values[:, 0]
            if values.ndim != 1 or values.shape[0] != rows.shape[0]:
                raise ValueError(
                    f"outputs must hold one value per row of X ({rows.shape[0]}), "
                    f"got shape {values.shape}"
                )
            output = (
                fit_numeric(OUTPUT_NAME, values.astype(np.float64), max_bins)
                if np.issubdtype(values.dtype, np.floating)
                else _fit_categorical(OUTPUT_NAME, values)
            )
        numeric = [j for j in range(rows.shape[1]) if j not in chosen]
        fitted = JointProfile.fit(rows, numeric, max_bins) if joint else None
        return cls(features, rows.shape[0], output, fitted)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able document."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "rows": self.rows,
            "features": [feature_dict(f) for f in self.features],
            "output": None if self.output is None else feature_dict(self.output),
            "joint": None if self.joint is None else self.joint.to_dict(),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> DriftProfile:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming what is wrong."""
        if document.get("format") != FORMAT or document.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"not a drift profile: expected format {FORMAT!r} version {FORMAT_VERSION}, "
                f"got {document.get('format')!r} version {document.get('version')!r}"
            )
        try:
            features = [feature_from(d) for d in document["features"]]
            output = document.get("output")
            joint = document.get("joint")  # absent from files written before the joint test
            return cls(
                features,
                int(document["rows"]),
                feature_from(output) if output else None,
                JointProfile.from_dict(joint, len(features)) if joint else None,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed drift profile: {type(exc).__name__}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DriftProfile:
        """Read a profile written by :meth:`save`."""
        try:
            document = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(document)


def _names(feature_names: Sequence[str] | None, width: int) -> list[str]:
    if feature_names is None:
        return [f"f{j}" for j in range(width)]
    names = [str(n) for n in feature_names]
    if len(names) != width:
        raise ValueError(f"{len(names)} feature names given for {width} columns")
    return names


def _categorical_indices(categorical: Sequence[int | str] | None, names: list[str]) -> set[int]:
    chosen: set[int] = set()
    for item in categorical or ():
        if isinstance(item, str) and not item.lstrip("-").isdigit():
            if item not in names:
                raise ValueError(f"categorical feature {item!r} is not one of {names}")
            chosen.add(names.index(item))
        else:
            index = int(item)
            if not 0 <= index < len(names):
                raise ValueError(
                    f"categorical column {index} is out of range (0..{len(names) - 1})"
                )
            chosen.add(index)
    return chosen


def fit_numeric(name: str, column: np.ndarray, max_bins: int) -> FeatureProfile:
    present = column[~np.isnan(column)]
    missing = int(column.shape[0] - present.shape[0])
    if present.shape[0] == 0:
        return FeatureProfile(name, "numeric", (0,), missing)
    if not np.isfinite(present).all():
        raise ValueError(f"feature {name!r} has infinite values")
    ordered = np.sort(present)
    # Linear-interpolation quantiles from one sort (np.quantile partitions once per quantile).
    position = np.linspace(0.0, 1.0, max_bins + 1) * (ordered.shape[0] - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, ordered.shape[0] - 1)
    quantiles = ordered[below] + (position - below) * (ordered[above] - ordered[below])
    # The top edge sits just above the maximum so that values beyond the training range get a
    # bin of their own (values below the minimum fall below the first edge anyway).
    top = ordered[-1] + ABOVE_MAX * max(ordered[-1] - ordered[0], abs(ordered[-1]), 1.0)
    edges = np.unique(np.concatenate([[ordered[0]], quantiles, [top]]))
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return FeatureProfile(
        name, "numeric", tuple(int(c) for c in counts), missing, edges=tuple(map(float, edges))
    )


def _fit_categorical(name: str, column: np.ndarray) -> FeatureProfile:
    if np.issubdtype(column.dtype, np.number):
        values = column.astype(np.float64)
        missing_mask = np.isnan(values)
        uniques, counts = np.unique(values[~missing_mask], return_counts=True)
        categories: tuple[float | str, ...] = tuple(float(u) for u in uniques)
    else:
        labels = np.asarray([str(v) for v in column])
        missing_mask = np.zeros(labels.shape[0], dtype=bool)
        uniques, counts = np.unique(labels, return_counts=True)
        categories = tuple(str(u) for u in uniques)
    return FeatureProfile(
        name,
        "categorical",
        (*(int(c) for c in counts), 0),
        int(missing_mask.sum()),
        categories=categories,
    )


def feature_dict(f: FeatureProfile) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": f.name,
        "kind": f.kind,
        "counts": list(f.counts),
        "missing": f.missing,
    }
    if f.kind == "numeric":
        document["edges"] = list(f.edges)
    else:
        document["categories"] = list(f.categories)
    return document


def feature_from(d: dict[str, Any]) -> FeatureProfile:
    kind = d["kind"]
    counts = tuple(int(c) for c in d["counts"])
    if kind == "numeric":
        edges = tuple(float(e) for e in d["edges"])
        if len(counts) != len(edges) + 1 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError(
                f"feature {d['name']!r}: need increasing edges and len(edges)+1 counts"
            )
        return FeatureProfile(str(d["name"]), "numeric", counts, int(d["missing"]), edges=edges)
    if kind == "categorical":
        categories = tuple(d["categories"])
        if len(counts) != len(categories) + 1:
            raise ValueError(
                f"feature {d['name']!r}: need one count per category plus the unseen bucket"
            )
        return FeatureProfile(
            str(d["name"]), "categorical", counts, int(d["missing"]), categories=categories
        )
    raise ValueError(f"feature {d.get('name')!r}: kind must be 'numeric' or 'categorical'")
