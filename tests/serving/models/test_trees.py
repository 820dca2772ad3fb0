"""Treelite (GTIL) forms of tree ensembles: which are exact, so that the compiler may use them.

The compiler keeps a compiled form only if its labels equal the library's and its probabilities
are within 1e-9 (``serving.models.compiled.TOLERANCE``); these tests pin down where that holds
on this Treelite version, so a change in either library shows up here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression

from serving.models.base import Model
from serving.models.compiled import TOLERANCE
from serving.models.examples import verification_rows
from serving.models.lightgbm import LightGBMModel
from serving.models.sklearn import SklearnModel
from serving.models.trees import convert, load_treelite
from serving.models.xgboost import XGBoostModel

CANCER = load_breast_cancer(return_X_y=True)
WINE = load_wine(return_X_y=True)
DIABETES = load_diabetes(return_X_y=True)


def _rows(data: np.ndarray, model: Model) -> np.ndarray:
    """The data and the compiler's verification rows; both with missing values too when the
    model takes them."""
    rows = np.vstack([data, verification_rows(data[:2])])
    if not model.allow_nan:
        return rows
    holes = rows.copy()
    holes[::3, ::4] = np.nan
    return np.vstack([rows, holes])


def _gap(source: Model, compiled: Model, rows: np.ndarray) -> tuple[bool, float]:
    a, b = source.predict(rows), compiled.predict(rows)
    if a.probabilities is None:
        assert b.probabilities is None
        return True, float(np.max(np.abs(a.outputs - b.outputs)))
    assert b.probabilities is not None
    return bool(np.array_equal(a.outputs, b.outputs)), float(
        np.max(np.abs(a.probabilities - b.probabilities))
    )


@pytest.mark.parametrize(
    ("name", "make", "data"),
    [
        ("hgb-binary", HistGradientBoostingClassifier(max_iter=50, random_state=0), CANCER),
        ("hgb-regressor", HistGradientBoostingRegressor(max_iter=50, random_state=0), DIABETES),
        ("random-forest", RandomForestClassifier(n_estimators=30, random_state=0), CANCER),
        ("gradient-boosting", GradientBoostingClassifier(n_estimators=30, random_state=0), CANCER),
        ("extra-trees", ExtraTreesRegressor(n_estimators=10, random_state=0), DIABETES),
        ("lightgbm-binary", lightgbm.LGBMClassifier(n_estimators=50, verbose=-1), CANCER),
    ],
)
def test_exact_within_tolerance(
    tmp_path: Path, name: str, make: Any, data: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, target = data
    fitted = make.fit(rows, target)
    source: Model = (
        LightGBMModel(fitted.booster_) if name.startswith("lightgbm") else SklearnModel(fitted)
    )
    converted = convert(source)
    assert converted is not None
    converted.save(tmp_path)
    reloaded = load_treelite(tmp_path)
    same_labels, gap = _gap(source, reloaded, _rows(rows, source))
    assert same_labels
    assert gap <= TOLERANCE


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (
            "xgboost",
            lambda: XGBoostModel(xgboost.XGBClassifier(n_estimators=50).fit(*CANCER).get_booster()),
        ),
        (
            "hgb-multiclass",
            lambda: SklearnModel(
                HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(*WINE)
            ),
        ),
        (
            "lightgbm-multiclass",
            lambda: LightGBMModel(
                lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, min_child_samples=5)
                .fit(*WINE)
                .booster_
            ),
        ),
    ],
)
def test_not_exact_so_the_library_keeps_serving(name: str, source: Any) -> None:
    """XGBoost computes in float32, and GTIL's softmax differs in the 8th digit: both are
    converted, and both miss the tolerance, so the compiler must refuse them."""
    model = source()
    data = WINE[0] if "multiclass" in name else CANCER[0]
    converted = convert(model)
    assert converted is not None
    same_labels, gap = _gap(model, converted, _rows(data, model))
    assert not (same_labels and gap <= TOLERANCE), gap


def test_no_importer_for_other_models() -> None:
    assert convert(SklearnModel(LogisticRegression(max_iter=1000).fit(*CANCER))) is None
