"""Which file a model directory serves, and how unknown or missing files are reported."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.dummy import DummyClassifier

from serving.models.loader import MODEL_FILES, find_model_file, load_model

ROWS = np.zeros((3, 4))


def _constant_classifier(label: str) -> DummyClassifier:
    return DummyClassifier(strategy="constant", constant=label).fit(ROWS, [label, "x", "y"])


@pytest.fixture
def every_format(tmp_path: Path) -> Path:
    """A directory holding one file of each recognised name."""
    skops.io.dump(_constant_classifier("skops"), tmp_path / "model.skops")
    joblib.dump(_constant_classifier("joblib"), tmp_path / "model.joblib")
    for name in MODEL_FILES[2:]:
        (tmp_path / name).write_bytes(b"not loaded")
    return tmp_path


def test_directory_precedence_is_model_files_order(every_format: Path) -> None:
    """The safer skops file first, then the names the platforms' own containers read
    (scikit-learn and Vertex AI: model.joblib, model.pkl, model.bst; SageMaker XGBoost:
    xgboost-model), then the libraries' own file names."""
    assert MODEL_FILES == (
        "model.skops",
        "model.joblib",
        "model.pkl",
        "model.bst",
        "xgboost-model",
        "model.json",
        "model.ubj",
        "model.txt",
        "model.onnx",
        "model.pt",
    )
    found = []
    for name in MODEL_FILES:
        found.append(find_model_file(every_format).name)
        (every_format / name).unlink()
    assert found == list(MODEL_FILES)


def test_safer_skops_file_is_served_over_joblib(every_format: Path) -> None:
    model = load_model(every_format)
    assert model.predict(ROWS[:1]).outputs.tolist() == ["skops"]


def test_a_file_path_chooses_the_file(every_format: Path) -> None:
    model = load_model(every_format / "model.joblib")
    assert model.predict(ROWS[:1]).outputs.tolist() == ["joblib"]


def test_empty_directory_lists_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as caught:
        find_model_file(tmp_path)
    assert str(caught.value) == (
        f"no model file in {tmp_path}: expected one of model.skops, model.joblib, model.pkl, "
        "model.bst, xgboost-model, model.json, model.ubj, model.txt, model.onnx, model.pt; "
        "found ['weights.bin']"
    )


def test_unknown_suffix_names_the_supported_ones(tmp_path: Path) -> None:
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"unknown model format 'model\.h5'; supported: \.joblib"):
        load_model(tmp_path / "model.h5")
