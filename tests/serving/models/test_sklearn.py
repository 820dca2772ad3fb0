"""scikit-learn models from joblib and skops files, and skops' trust policy."""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from serving.demo import demo_data
from serving.models.sklearn import UntrustedModelError, load_joblib, load_skops


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rows, labels, _ = demo_data()
    return rows, labels


def _classifier(rows: np.ndarray, labels: np.ndarray) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(rows, labels)


def test_joblib_classifier_gives_labels_and_probabilities(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, labels = data
    estimator = _classifier(rows, labels)
    joblib.dump(estimator, tmp_path / "model.joblib")
    model = load_joblib(tmp_path / "model.joblib")
    prediction = model.predict(rows[:50])
    assert model.format == "sklearn"
    assert (model.n_features, model.classes) == (30, [0, 1])
    np.testing.assert_array_equal(prediction.outputs, estimator.predict(rows[:50]))
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities, estimator.predict_proba(rows[:50]))


def test_joblib_regressor_gives_values(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    rows, labels = data
    estimator = LinearRegression().fit(rows, labels.astype(float))
    joblib.dump(estimator, tmp_path / "model.joblib")
    prediction = load_joblib(tmp_path / "model.joblib").predict(rows[:5])
    assert prediction.probabilities is None
    np.testing.assert_allclose(prediction.outputs, estimator.predict(rows[:5]))


def test_dataframe_fitted_estimator_without_pandas_is_refused_at_load(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, labels = data
    estimator = LogisticRegression(max_iter=1000).fit(rows[:, :3], labels)
    estimator.feature_names_in_ = np.array(["radius", "texture", "perimeter"], dtype=object)
    joblib.dump(estimator, tmp_path / "model.joblib")
    monkeypatch.setitem(sys.modules, "pandas", None)  # as in an image without pandas
    with pytest.raises(RuntimeError, match=r"fitted on a pandas DataFrame \(3 named columns\)"):
        load_joblib(tmp_path / "model.joblib")


def test_skops_with_default_trusted_types_loads(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, labels = data
    estimator = _classifier(rows, labels)
    skops.io.dump(estimator, tmp_path / "model.skops")
    prediction = load_skops(tmp_path / "model.skops").predict(rows[:50])
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities, estimator.predict_proba(rows[:50]))


@pytest.fixture(scope="module")
def skops_with_a_function(
    tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, np.ndarray]
) -> Path:
    """A pipeline whose first step calls ``operator.neg``: a type skops does not trust."""
    rows, labels = data
    estimator = make_pipeline(
        FunctionTransformer(operator.neg), StandardScaler(), LogisticRegression(max_iter=1000)
    ).fit(rows, labels)
    path = tmp_path_factory.mktemp("skops") / "model.skops"
    skops.io.dump(estimator, path)
    return path


def test_skops_with_untrusted_types_is_refused_naming_them(skops_with_a_function: Path) -> None:
    with pytest.raises(UntrustedModelError) as caught:
        load_skops(skops_with_a_function)
    assert str(caught.value) == (
        "model.skops holds types skops does not trust by default: _operator.neg. Review them; "
        "to load them anyway, list them in ML_ENDPOINTS_SKOPS_TRUSTED (comma-separated)"
    )


def test_skops_trusting_only_some_types_still_refuses(skops_with_a_function: Path) -> None:
    with pytest.raises(UntrustedModelError, match=r"_operator\.neg"):
        load_skops(skops_with_a_function, trusted=["builtins.eval"])


def test_skops_types_the_operator_trusts_load(
    skops_with_a_function: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    rows, labels = data
    model = load_skops(skops_with_a_function, trusted=["_operator.neg"])
    accuracy = float((model.predict(rows).outputs == labels).mean())
    assert accuracy > 0.95
