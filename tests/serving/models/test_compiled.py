"""The ONNX Runtime compilation of scikit-learn models: equal answers, or no compilation."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.dummy import DummyClassifier

from serving.demo import build_demo_model, demo_data, write_demo_artifacts
from serving.models.compiled import DECISION_FILE, compile_cached
from serving.models.onnx import OnnxModel


def test_logistic_regression_compiles_with_identical_answers(tmp_path: Path) -> None:
    model_dir = write_demo_artifacts(tmp_path / "model", "logreg")
    onnx_file = compile_cached(model_dir / "model.joblib", tmp_path / "cache")
    assert onnx_file is not None
    rows = demo_data()[0]
    reference = build_demo_model("logreg")
    prediction = OnnxModel(onnx_file).predict(rows)
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities, reference.predict_proba(rows), atol=1e-6)
    np.testing.assert_array_equal(prediction.outputs, reference.predict(rows))
    decision = json.loads((onnx_file.parent / DECISION_FILE).read_text())
    assert decision["use_onnx"] is True
    assert decision["onnx_us"] < decision["sklearn_us"]


def test_compilation_runs_once_per_model_content(tmp_path: Path) -> None:
    model_dir = write_demo_artifacts(tmp_path / "model", "logreg")
    first = compile_cached(model_dir / "model.joblib", tmp_path / "cache")
    assert first is not None
    stamp = (first.parent / DECISION_FILE).stat().st_mtime_ns
    again = compile_cached(model_dir / "model.joblib", tmp_path / "cache")
    assert again == first
    assert (first.parent / DECISION_FILE).stat().st_mtime_ns == stamp


def test_estimator_without_converter_keeps_scikit_learn(tmp_path: Path) -> None:
    rows, labels, _ = demo_data()
    model_file = tmp_path / "model.joblib"
    joblib.dump(DummyClassifier(strategy="prior").fit(rows, labels), model_file)
    assert compile_cached(model_file, tmp_path / "cache") is None
    decision = json.loads(next((tmp_path / "cache").glob(f"*/{DECISION_FILE}")).read_text())
    assert decision["use_onnx"] is False
    assert "no ONNX conversion" in decision["reason"]
