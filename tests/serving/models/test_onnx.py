"""ONNX models exported by skl2onnx answer as the scikit-learn model they came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

from serving.demo import build_demo_model, demo_data
from serving.models.onnx import load_onnx

N_FEATURES = 30


@pytest.fixture(scope="module")
def estimator() -> Any:
    return build_demo_model("logreg")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return demo_data()[0]


def _export(estimator: Any, path: Path, tensor: type, *, zipmap: bool = False) -> Path:
    onx = to_onnx(
        estimator,
        initial_types=[("input", tensor([None, N_FEATURES]))],
        options={id(estimator): {"zipmap": zipmap}},
        target_opset=17,
    )
    entry = onx.metadata_props.add()
    entry.key, entry.value = "classes", json.dumps(estimator.classes_.tolist())
    path.write_bytes(onx.SerializeToString())
    return path


def test_double_model_equals_sklearn_within_1e6(
    tmp_path: Path, estimator: Any, rows: np.ndarray
) -> None:
    model = load_onnx(_export(estimator, tmp_path / "model.onnx", DoubleTensorType))
    assert (model.format, model.n_features, model.classes) == ("onnx", N_FEATURES, [0, 1])
    prediction = model.predict(rows)
    np.testing.assert_array_equal(prediction.outputs, estimator.predict(rows))
    assert prediction.probabilities is not None
    np.testing.assert_allclose(
        prediction.probabilities, estimator.predict_proba(rows), rtol=0, atol=1e-6
    )


def test_float32_model_runs_on_float32_inputs(
    tmp_path: Path, estimator: Any, rows: np.ndarray
) -> None:
    model = load_onnx(_export(estimator, tmp_path / "model.onnx", FloatTensorType))
    prediction = model.predict(rows)
    assert prediction.probabilities is not None
    expected = estimator.predict_proba(rows.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=0, atol=1e-4)
    agreement = (prediction.outputs == estimator.predict(rows)).mean()
    assert agreement > 0.99


def test_zipmap_output_becomes_a_probability_matrix(
    tmp_path: Path, estimator: Any, rows: np.ndarray
) -> None:
    # skl2onnx's ZipMap takes float32 probabilities only
    model = load_onnx(_export(estimator, tmp_path / "model.onnx", FloatTensorType, zipmap=True))
    prediction = model.predict(rows[:10])
    assert prediction.probabilities is not None
    assert prediction.probabilities.shape == (10, 2)
    np.testing.assert_allclose(
        prediction.probabilities, estimator.predict_proba(rows[:10]), rtol=0, atol=1e-4
    )


def test_model_with_two_inputs_is_refused(tmp_path: Path, estimator: Any) -> None:
    onx = to_onnx(
        estimator.steps[0][1],
        initial_types=[("a", DoubleTensorType([None, N_FEATURES]))],
        target_opset=17,
    )
    extra = onx.graph.input.add()
    extra.CopyFrom(onx.graph.input[0])
    extra.name = "b"
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    with pytest.raises(ValueError, match=r"model\.onnx: expected one input tensor, found 2"):
        load_onnx(tmp_path / "model.onnx")


def test_server_answers_with_the_onnx_probabilities(
    tmp_path: Path, estimator: Any, rows: np.ndarray, start_server: Callable[..., Any]
) -> None:
    path = _export(estimator, tmp_path / "model.onnx", DoubleTensorType)
    server = start_server(
        "--model", str(path), "--output", "probabilities", env={"ML_ENDPOINTS_DRAIN_SECONDS": "0"}
    )
    response = httpx.post(
        server.url + "/invocations", json={"instances": rows[:20].tolist()}, timeout=10
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        np.asarray(response.json()),  # /invocations: a bare list
        estimator.predict_proba(rows[:20]),
        rtol=0,
        atol=1e-6,
    )
