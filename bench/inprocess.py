"""In-process predict throughput: scikit-learn vs what the server runs (maybe ONNX Runtime)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from serving.demo import DemoKind, demo_data, write_demo_artifacts
from serving.models.base import Model, Prediction
from serving.models.compiled import compile_model, load_compiled
from serving.models.sklearn import load_joblib


def rows_per_second(
    predict: Callable[[np.ndarray], Prediction], rows: np.ndarray, seconds: float = 1.0
) -> float:
    """Rows predicted per second, calling ``predict(rows)`` repeatedly for ``seconds``."""
    for _ in range(20):
        predict(rows)
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        predict(rows)
        calls += 1
    return calls * rows.shape[0] / elapsed


def measure(kind: DemoKind) -> list[tuple[str, str, float]]:
    """(predictor, batch, rows/s) for scikit-learn and for what the server would run."""
    rows = demo_data()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_demo_artifacts(Path(tmp), kind)
        sklearn_model = load_joblib(model_dir / "model.joblib")
        decision = compile_model(model_dir / "model.joblib", model_dir)
        served: Model = (
            sklearn_model if decision.form is None else load_compiled(decision.form, model_dir)
        )
        names = {None: "scikit-learn", "onnx": "ONNX Runtime", "treelite": "Treelite"}
        label = names[decision.form]
        out = []
        for name, model in (("scikit-learn", sklearn_model), (f"served: {label}", served)):
            for batch in (1, 32):
                rate = rows_per_second(model.predict, rows[:batch])
                out.append((f"{kind} {name}", str(batch), rate))
        return out
