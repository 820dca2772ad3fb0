"""Fitting, saving and loading reference profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serving.drift import DriftProfile
from serving.drift.counts import Binner


def _mixed(rng: np.random.Generator, n: int) -> np.ndarray:
    X = np.column_stack(
        [rng.normal(size=n), rng.poisson(3, n).astype(float), rng.integers(0, 4, n).astype(float)]
    )
    X[rng.random(n) < 0.1, 0] = np.nan
    return X


def test_fit_numeric_categorical_missing_and_outputs() -> None:
    X = _mixed(np.random.default_rng(0), 1000)
    profile = DriftProfile.fit(X, ["a", "b", "c"], categorical=["c"], outputs=X[:, 2] > 1)
    a, b, c = profile.features
    assert a.kind == "numeric"
    assert b.kind == "numeric"
    assert c.kind == "categorical"
    assert a.missing == int(np.isnan(X[:, 0]).sum())
    assert b.missing == 0
    assert sum(a.counts) + a.missing == 1000
    assert a.edges[0] == np.nanmin(X[:, 0])
    assert np.nanmax(X[:, 0]) < a.edges[-1] < np.nanmax(X[:, 0]) + 1e-6
    assert a.counts[0] == 0  # nothing below the minimum
    assert a.counts[-1] == 0  # nothing above the maximum
    assert c.categories == (0.0, 1.0, 2.0, 3.0)
    assert c.counts[-1] == 0
    assert len(b.edges) <= 20  # a discrete feature gets one edge per distinct value at most
    assert profile.output is not None
    assert profile.output.categories == ("False", "True")


def test_counting_the_reference_reproduces_its_counts() -> None:
    X = _mixed(np.random.default_rng(1), 500)
    profile = DriftProfile.fit(X, categorical=[2])
    binner = Binner(profile)
    counted, reference = binner.count(X).matrix, binner.reference().matrix
    features = len(profile.tested)
    np.testing.assert_array_equal(counted[:features], reference[:features])
    # the joint statistics' reference comes from the rows the PCA was not fitted on
    assert profile.joint is not None
    assert (reference[features:].sum(axis=1) == 500 - profile.joint.fitted_rows).all()
    assert (counted[features:].sum(axis=1) == 500).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    X = _mixed(np.random.default_rng(2), 300)
    profile = DriftProfile.fit(X, ["x", "y", "z"], categorical=[2], outputs=X[:, 1])
    path = tmp_path / "drift_reference.json"
    profile.save(path)
    loaded = DriftProfile.load(path)
    assert loaded.to_dict() == profile.to_dict()
    assert loaded.features == profile.features
    assert loaded.output == profile.output


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature_names": ["a"]}, "1 feature names given for 3 columns"),
        ({"categorical": ["nope"]}, "categorical feature 'nope' is not one of"),
        ({"categorical": [7]}, "categorical column 7 is out of range"),
        ({"max_bins": 1}, "max_bins must be >= 2"),
        ({"outputs": np.zeros(3)}, "outputs must hold one value per row of X"),
    ],
)
def test_fit_errors_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftProfile.fit(np.zeros((10, 3)), **kwargs)  # type: ignore[arg-type]


def test_load_rejects_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a drift profile"):
        DriftProfile.load(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        DriftProfile.load(path)
    document = DriftProfile.fit(np.arange(20.0).reshape(10, 2)).to_dict()
    document["features"][0]["edges"] = [3.0, 1.0]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="need increasing edges"):
        DriftProfile.load(path)
