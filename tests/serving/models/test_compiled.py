"""Compiled forms (ONNX Runtime, Treelite): equal answers and faster, or the library serves."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import xgboost
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier

from serving.demo import build_demo_model, demo_data, write_demo_artifacts
from serving.models.compiled import DECISION_FILE, compilable, compile_cached
from serving.models.onnx import OnnxModel


def _decision(cache: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads(next(cache.glob(f"*/{DECISION_FILE}")).read_text())
    return document


def test_logistic_regression_compiles_to_onnx_with_identical_answers(tmp_path: Path) -> None:
    model_dir = write_demo_artifacts(tmp_path / "model", "logreg")
    compiled = compile_cached(model_dir / "model.joblib", tmp_path / "cache")
    assert isinstance(compiled, OnnxModel)
    assert compiled.format == "sklearn->onnx"
    rows = demo_data()[0]
    reference = build_demo_model("logreg")
    prediction = compiled.predict(rows)
    assert prediction.probabilities is not None
    np.testing.assert_allclose(prediction.probabilities, reference.predict_proba(rows), atol=1e-9)
    np.testing.assert_array_equal(prediction.outputs, reference.predict(rows))
    decision = _decision(tmp_path / "cache")
    assert decision["form"] == "onnx"
    assert decision["source_format"] == "sklearn"
    assert isinstance(decision["compiled_us"], float)
    assert isinstance(decision["source_us"], float)
    assert decision["compiled_us"] < decision["source_us"]


def test_compilation_runs_once_per_model_content(tmp_path: Path) -> None:
    model_dir = write_demo_artifacts(tmp_path / "model", "logreg")
    assert compile_cached(model_dir / "model.joblib", tmp_path / "cache") is not None
    decision_file = next((tmp_path / "cache").glob(f"*/{DECISION_FILE}"))
    stamp = decision_file.stat().st_mtime_ns
    assert compile_cached(model_dir / "model.joblib", tmp_path / "cache") is not None
    assert decision_file.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "cache").glob(f"*/{DECISION_FILE}"))) == 1


def test_estimator_without_converter_keeps_scikit_learn(tmp_path: Path) -> None:
    rows, labels, _ = demo_data()
    model_file = tmp_path / "model.joblib"
    joblib.dump(DummyClassifier(strategy="prior").fit(rows, labels), model_file)
    assert compile_cached(model_file, tmp_path / "cache") is None
    decision = _decision(tmp_path / "cache")
    assert decision["form"] is None
    assert "onnx: no conversion" in str(decision["reason"])


def test_hgb_has_an_exact_treelite_form(tmp_path: Path) -> None:
    """HistGradientBoosting on Treelite is exact to 1e-16 (binary); whether it also serves
    depends on it being faster on this machine, which the decision states either way."""
    rows, labels, _ = demo_data()
    model_file = tmp_path / "model.joblib"
    joblib.dump(
        HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(rows, labels), model_file
    )
    compiled = compile_cached(model_file, tmp_path / "cache")
    reason = str(_decision(tmp_path / "cache")["reason"])
    assert "treelite: equal answers" in reason or "treelite: not faster" in reason, reason
    if compiled is not None:
        assert compiled.format == "sklearn->treelite"


def test_xgboost_keeps_its_own_predictor_because_treelite_differs(tmp_path: Path) -> None:
    rows, labels, _ = demo_data()
    booster = xgboost.XGBClassifier(n_estimators=30, random_state=0).fit(rows, labels)
    model_file = tmp_path / "xgboost-model"
    model_file.write_bytes(bytes(booster.get_booster().save_raw("json")))
    assert compilable(model_file)
    assert compile_cached(model_file, tmp_path / "cache") is None
    decision = _decision(tmp_path / "cache")
    assert decision["form"] is None
    assert decision["source_format"] == "xgboost"
    assert "treelite: answers differ beyond 1e-09" in str(decision["reason"])


def test_what_is_compilable() -> None:
    for name in ("model.joblib", "model.pkl", "model.bst", "xgboost-model", "model.txt"):
        assert compilable(Path(name)), name
    for name in ("model.onnx", "model.pt", "model.skops"):
        assert not compilable(Path(name)), name
