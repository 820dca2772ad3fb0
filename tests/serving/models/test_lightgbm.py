"""LightGBM text models (``Booster.save_model("model.txt")``), answering as the library."""

from __future__ import annotations

from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from serving.models.loader import find_model_file, load_model

PARAMS = {"n_estimators": 30, "num_leaves": 15, "random_state": 0, "verbose": -1}


def test_binary_text_model_answers_like_lgbmclassifier(tmp_path: Path) -> None:
    rows, labels = load_breast_cancer(return_X_y=True)
    model = lightgbm.LGBMClassifier(**PARAMS).fit(rows, labels)
    model.booster_.save_model(str(tmp_path / "model.txt"))
    probe = rows.copy()
    probe[::5, 7] = np.nan

    assert find_model_file(tmp_path).name == "model.txt"
    served = load_model(tmp_path)
    assert served.format == "lightgbm"
    assert served.n_features == rows.shape[1]
    assert served.feature_names is None  # LightGBM's made-up Column_N names are not real names
    assert served.classes == [0, 1]
    assert served.allow_nan
    prediction = served.predict(probe)
    assert np.array_equal(prediction.outputs, model.predict(probe))
    assert prediction.probabilities is not None
    assert np.array_equal(prediction.probabilities, model.predict_proba(probe))


def test_multiclass_text_model(tmp_path: Path) -> None:
    rows, labels = load_wine(return_X_y=True)
    model = lightgbm.LGBMClassifier(**PARAMS, min_child_samples=5).fit(rows, labels)
    model.booster_.save_model(str(tmp_path / "model.txt"))
    served = load_model(tmp_path)
    assert served.classes == [0, 1, 2]
    prediction = served.predict(rows)
    assert np.array_equal(prediction.outputs, model.predict(rows))
    assert prediction.probabilities is not None
    assert np.array_equal(prediction.probabilities, model.predict_proba(rows))


def test_regression_text_model(tmp_path: Path) -> None:
    rows, target = load_diabetes(return_X_y=True)
    model = lightgbm.LGBMRegressor(**PARAMS).fit(rows, target)
    model.booster_.save_model(str(tmp_path / "model.txt"))
    served = load_model(tmp_path)
    assert served.classes is None
    prediction = served.predict(rows)
    assert prediction.probabilities is None
    assert np.array_equal(prediction.outputs, model.predict(rows))


def test_named_features_are_kept(tmp_path: Path) -> None:
    data = load_breast_cancer()
    names = [f"f_{i}" for i in range(data.data.shape[1])]
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(data.data, data.target, feature_name=names),
        num_boost_round=5,
    )
    booster.save_model(str(tmp_path / "model.txt"))
    assert load_model(tmp_path).feature_names == names


def test_pickled_lgbmclassifier_is_served_through_its_interface(tmp_path: Path) -> None:
    rows, labels = load_breast_cancer(return_X_y=True)
    model = lightgbm.LGBMClassifier(**PARAMS).fit(rows, labels)
    joblib.dump(model, tmp_path / "model.pkl")
    prediction = load_model(tmp_path).predict(rows)
    assert np.array_equal(prediction.outputs, model.predict(rows))


def test_a_text_file_that_is_not_a_model_names_itself(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"model\.txt is not a LightGBM text model"):
        load_model(tmp_path)
