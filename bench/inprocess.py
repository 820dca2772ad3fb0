"""In-process predict throughput: scikit-learn vs the compiled (ONNX Runtime) predictor."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from serving.demo import DemoKind, build_demo_model, demo_data
from serving.models.base import Prediction
from serving.models.compiled import compile_sklearn
from serving.models.sklearn import SklearnModel


def rows_per_second(predict: Callable[[np.ndarray], Prediction], rows: np.ndarray,
                    seconds: float = 1.0) -> float:
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
    """(predictor, batch, rows/s) for scikit-learn and whatever the server would run."""
    rows = demo_data()[0]
    sklearn_model = SklearnModel(build_demo_model(kind))
    served = compile_sklearn(sklearn_model, rows[:256])
    out = []
    for name, model in (("scikit-learn", sklearn_model), (f"served ({served.format})", served)):
        for batch in (1, 32):
            out.append((f"{kind} {name}", f"{batch}", rows_per_second(model.predict, rows[:batch])))
    return out
