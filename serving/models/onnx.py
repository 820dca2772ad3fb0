"""ONNX models (``model.onnx``) on ONNX Runtime, e.g. scikit-learn converted with skl2onnx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Prediction

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


class OnnxModel:
    """An ONNX Runtime session with one 2-D input.

    The first output is the per-row answer; a second 2-D output is taken as class probabilities
    (skl2onnx's ``label`` / ``probabilities`` with ``zipmap=False``). Class labels come from the
    ``classes`` metadata entry when the model carries one.
    """

    format = "onnx"

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{path.name}: expected one input tensor, found {len(inputs)}")
        self._input = inputs[0].name
        if inputs[0].type not in _DTYPES:
            raise ValueError(f"{path.name}: input type {inputs[0].type} is not supported")
        self._dtype = _DTYPES[inputs[0].type]
        shape = inputs[0].shape
        self.n_features: int | None = (
            shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        )
        self._outputs = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.classes: list[Any] | None = json.loads(meta["classes"]) if "classes" in meta else None
        self.feature_names: list[str] | None = (
            json.loads(meta["feature_names"]) if "feature_names" in meta else None
        )
        self.allow_nan = meta.get("allow_nan", "false") == "true"

    def predict(self, rows: np.ndarray) -> Prediction:
        """Run the session on ``rows`` converted to the input's dtype."""
        results = self.session.run(self._outputs[:2], {self._input: rows.astype(self._dtype)})
        outputs = np.asarray(results[0])
        probabilities = None
        if len(results) > 1:
            second: Any = results[1]
            if isinstance(second, list) and second and isinstance(second[0], dict):  # ZipMap
                keys = list(second[0])
                second = [[row[k] for k in keys] for row in second]
            second = np.asarray(second, dtype=np.float64)
            if second.ndim == 2 and second.shape[0] == outputs.shape[0]:
                probabilities = second
        return Prediction(outputs, probabilities)


def load_onnx(path: Path) -> OnnxModel:
    """Open an ONNX file (needs the ``onnx`` extra)."""
    try:
        return OnnxModel(path)
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(f"{path.name} needs onnxruntime: install ml-endpoints[onnx]") from exc
