"""XGBoost models in every form the platforms' own containers accept, answering as the library.

File names: SageMaker's XGBoost container loads ``xgboost-model``, a pickle or a native model
(aws/sagemaker-xgboost-container ``algorithm_mode/serve_utils.py`` ``get_loaded_booster``);
Vertex AI's prebuilt XGBoost container ``model.bst``, ``model.joblib`` or ``model.pkl``
(googleapis/python-aiplatform ``google/cloud/aiplatform/prediction/xgboost/predictor.py``).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from serving.models.loader import find_model_file, load_model


@pytest.fixture(scope="module")
def binary() -> tuple[xgboost.XGBClassifier, np.ndarray]:
    rows, labels = load_breast_cancer(return_X_y=True)
    model = xgboost.XGBClassifier(n_estimators=30, max_depth=4, random_state=0).fit(rows, labels)
    probe = rows.copy()
    probe[::7, 3] = np.nan  # missing values take each split's default branch
    return model, probe


def _save(booster: Any, path: Path, form: str) -> Path:
    if form == "pickle":
        with path.open("wb") as out:
            pickle.dump(booster, out)
    elif form == "joblib":
        joblib.dump(booster, path)
    elif form == "legacy-binary":
        path.write_bytes(bytes(booster.save_raw(raw_format="deprecated")))
    elif form == "ubj":
        path.write_bytes(bytes(booster.save_raw(raw_format="ubj")))
    elif form == "json-bytes":
        path.write_bytes(bytes(booster.save_raw(raw_format="json")))
    return path


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("xgboost-model", "legacy-binary"),  # SageMaker's older XGBoost algorithm output
        ("xgboost-model", "pickle"),  # SageMaker's XGBoost framework (pickle.dump of a Booster)
        ("xgboost-model", "ubj"),
        ("xgboost-model", "json-bytes"),
        ("model.bst", "legacy-binary"),  # Vertex AI's name
        ("model.bst", "ubj"),
        ("model.json", "json-bytes"),
        ("model.ubj", "ubj"),
        ("model.joblib", "joblib"),  # Vertex AI: a joblib Booster
        ("model.pkl", "pickle"),
    ],
)
def test_every_file_form_answers_like_xgbclassifier(
    tmp_path: Path, binary: tuple[xgboost.XGBClassifier, np.ndarray], name: str, form: str
) -> None:
    model, probe = binary
    _save(model.get_booster(), tmp_path / name, form)
    assert find_model_file(tmp_path).name == name
    served = load_model(tmp_path)
    assert served.format == "xgboost"
    assert served.n_features == probe.shape[1]
    assert served.classes == [0, 1]
    assert served.allow_nan
    prediction = served.predict(probe)
    assert np.array_equal(prediction.outputs, model.predict(probe))
    assert prediction.probabilities is not None
    assert np.array_equal(prediction.probabilities, model.predict_proba(probe).astype(np.float64))


def test_pickled_sklearn_api_estimator_is_served_through_its_interface(
    tmp_path: Path, binary: tuple[xgboost.XGBClassifier, np.ndarray]
) -> None:
    model, probe = binary
    joblib.dump(model, tmp_path / "model.pkl")
    served = load_model(tmp_path)
    prediction = served.predict(probe)
    assert np.array_equal(prediction.outputs, model.predict(probe))
    assert prediction.probabilities is not None
    np.testing.assert_allclose(
        prediction.probabilities, model.predict_proba(probe), rtol=0, atol=1e-9
    )


def test_multiclass_softprob(tmp_path: Path) -> None:
    rows, labels = load_wine(return_X_y=True)
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(rows, labels)
    model.get_booster().save_model(str(tmp_path / "model.json"))
    served = load_model(tmp_path)
    assert served.classes == [0, 1, 2]
    prediction = served.predict(rows)
    assert np.array_equal(prediction.outputs, model.predict(rows))
    assert prediction.probabilities is not None
    assert np.array_equal(prediction.probabilities, model.predict_proba(rows).astype(np.float64))


def test_regression_answers_the_booster_values(tmp_path: Path) -> None:
    rows, target = load_diabetes(return_X_y=True)
    model = xgboost.XGBRegressor(n_estimators=20, max_depth=3, random_state=0).fit(rows, target)
    model.get_booster().save_model(str(tmp_path / "model.ubj"))
    served = load_model(tmp_path)
    assert served.classes is None
    prediction = served.predict(rows)
    assert prediction.probabilities is None
    assert np.array_equal(prediction.outputs, model.predict(rows))


def test_a_file_that_is_not_a_model_names_itself(tmp_path: Path) -> None:
    (tmp_path / "model.bst").write_bytes(b"definitely not a booster")
    with pytest.raises(ValueError, match=r"model\.bst is not an XGBoost model"):
        load_model(tmp_path)


def test_a_pickle_of_something_else_is_refused_by_name(tmp_path: Path) -> None:
    joblib.dump({"weights": [1, 2]}, tmp_path / "xgboost-model")
    with pytest.raises(
        TypeError, match=r"xgboost-model holds a builtins\.dict, which has no predict\(\)"
    ):
        load_model(tmp_path)


def test_predicting_does_not_search_for_pandas_each_time(
    tmp_path: Path, binary: tuple[xgboost.XGBClassifier, np.ndarray]
) -> None:
    """xgboost tries ``import pandas`` on every predict (to spot DataFrames); without pandas,
    each try searched ``sys.path`` again, costing more than a small batch's prediction."""
    model, _ = binary
    model.get_booster().save_model(str(tmp_path / "model.json"))
    script = f"""
import importlib.abc, sys
import numpy as np
sys.modules.pop("pandas", None)
searched = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            searched.append(name)
        return None
sys.meta_path.insert(0, Watch())
from serving.models.loader import load_model
served = load_model(__import__("pathlib").Path({str(tmp_path)!r}))
before = len(searched)
for _ in range(5):
    served.predict(np.zeros((1, {model.n_features_in_})))
print(len(searched) - before)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
