"""Compile scikit-learn models to ONNX Runtime when that is faster and gives the same answers.

At load time the estimator is converted with skl2onnx (float64 end to end), both predictors run
on the warm-up rows, and the compiled one is kept only if its probabilities match within
``TOLERANCE``, its labels match exactly, and it is faster. Anything else keeps scikit-learn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from serving.models.base import Model, Prediction
from serving.models.sklearn import SklearnModel

log = logging.getLogger("ml_endpoints.compiled")
TOLERANCE = 1e-9


class CompiledSklearnModel:
    """An ONNX Runtime session standing in for a scikit-learn estimator (same metadata)."""

    format = "sklearn+onnxruntime"

    def __init__(self, source: SklearnModel, session: Any) -> None:
        self.source = source
        self.session = session
        self.n_features = source.n_features
        self.feature_names = source.feature_names
        self.classes = source.classes
        self.allow_nan = source.allow_nan
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()][:2]
        self._proba = source.classes is not None and len(self._outputs) == 2

    def predict(self, rows: np.ndarray) -> Prediction:
        """One session run: labels (and probabilities for classifiers)."""
        results = self.session.run(self._outputs, {self._input: rows})
        if self._proba:
            return Prediction(np.asarray(results[0]), np.asarray(results[1], dtype=np.float64))
        return Prediction(np.asarray(results[0]).reshape(rows.shape[0], -1).squeeze(axis=1))


def compile_sklearn(model: SklearnModel, rows: np.ndarray) -> Model:
    """The faster of ``model`` and its ONNX Runtime compilation, if they agree on ``rows``."""
    if model.n_features is None or model.feature_names is not None:
        return model  # DataFrame-fitted estimators keep their column handling in scikit-learn
    try:
        compiled = CompiledSklearnModel(model, _session(model))
        expected, actual = model.predict(rows), compiled.predict(rows)
    except Exception as exc:  # not convertible: many estimators and custom steps are not
        log.info("keeping scikit-learn (ONNX conversion not possible: %s)", str(exc)[:200])
        return model
    if not _same(expected, actual):
        log.warning("keeping scikit-learn: ONNX Runtime answers differ on the warm-up rows")
        return model
    one = rows[:1]
    t_sklearn, t_onnx = _best_time(model.predict, one), _best_time(compiled.predict, one)
    if t_onnx >= t_sklearn:
        log.info(
            "keeping scikit-learn (%.0f us) over ONNX Runtime (%.0f us)",
            t_sklearn * 1e6,
            t_onnx * 1e6,
        )
        return model
    log.info("compiled to ONNX Runtime: %.0f us -> %.0f us per row", t_sklearn * 1e6, t_onnx * 1e6)
    return compiled


def _session(model: SklearnModel) -> Any:
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    estimator = model.estimator
    options = {id(estimator): {"zipmap": False}} if model.classes is not None else None
    onx = to_onnx(
        estimator,
        initial_types=[("input", DoubleTensorType([None, model.n_features]))],
        options=options,
        target_opset=17,
    )
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = 1
    session_options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onx.SerializeToString(), session_options, providers=["CPUExecutionProvider"]
    )


def _same(a: Prediction, b: Prediction) -> bool:
    if a.outputs.shape != b.outputs.shape:
        return False
    if a.probabilities is None:
        return b.probabilities is None and bool(
            np.allclose(a.outputs, b.outputs, rtol=0, atol=TOLERANCE)
        )
    return (
        b.probabilities is not None
        and a.probabilities.shape == b.probabilities.shape
        and bool(np.array_equal(a.outputs, b.outputs))
        and bool(np.allclose(a.probabilities, b.probabilities, rtol=0, atol=TOLERANCE))
    )


def _best_time(predict: Callable[[np.ndarray], Prediction], rows: np.ndarray) -> float:
    best = float("inf")
    for _ in range(20):
        started = time.perf_counter()
        predict(rows)
        best = min(best, time.perf_counter() - started)
    return best
