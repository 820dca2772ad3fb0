"""Compile scikit-learn models to ONNX Runtime when that is faster and gives the same answers.

The compiler runs in a child process (``python -m serving.models.compiled MODEL OUT``), once per
model file (the result is cached by content), so that scikit-learn, skl2onnx and their imports
never occupy the serving worker's memory. It converts with skl2onnx in float64 end to end, runs
both predictors on verification rows (the model's input example, zeros, and seeded perturbations),
and keeps the ONNX model only if labels match exactly, probabilities within ``TOLERANCE``, and
it is faster on one row. Anything else — unsupported estimators, custom steps, DataFrame-fitted
pipelines, differing answers — keeps scikit-learn, and the reason is logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from serving.artifacts import file_lock, file_sha256
from serving.models.base import Prediction

log = logging.getLogger("ml_endpoints.compiled")
TOLERANCE = 1e-9
#: Model files the compiler takes: pickled scikit-learn estimators.
COMPILABLE_SUFFIXES = (".joblib", ".pkl")
ONNX_FILE = "model.onnx"
DECISION_FILE = "decision.json"


@dataclass(frozen=True)
class Decision:
    """What the compiler decided for one model file, and why."""

    use_onnx: bool
    reason: str
    sklearn_us: float | None = None
    onnx_us: float | None = None


def compile_cached(model_file: Path, cache_dir: Path, timeout: float = 300) -> Path | None:
    """The verified, faster ONNX file for ``model_file``, or ``None`` to keep scikit-learn."""
    try:
        versions = "|".join(version(p) for p in ("scikit-learn", "skl2onnx", "onnxruntime"))
    except PackageNotFoundError:
        return None  # the onnx extra is not installed
    key = hashlib.sha256(f"{versions}|{file_sha256(model_file)}".encode()).hexdigest()
    out_dir = cache_dir / f"compiled-{key[:16]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(out_dir / ".lock"):  # several workers: one compiles, the others reuse
        if not (out_dir / DECISION_FILE).exists():
            done = subprocess.run(
                [sys.executable, "-m", "serving.models.compiled", str(model_file), str(out_dir)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                log.warning("compiler failed (keeping scikit-learn): %s", done.stderr[-500:])
                return None
    decision = Decision(**json.loads((out_dir / DECISION_FILE).read_text()))
    log.info("%s: %s", "ONNX Runtime" if decision.use_onnx else "scikit-learn", decision.reason)
    return out_dir / ONNX_FILE if decision.use_onnx else None


def compile_model(model_file: Path, out_dir: Path) -> Decision:
    """Convert, verify and time; write ``model.onnx`` (if chosen) and ``decision.json``."""
    from serving.models.examples import example_rows, verification_rows
    from serving.models.sklearn import load_joblib

    source = load_joblib(model_file)
    example = example_rows(source, model_file.parent)
    if source.feature_names is not None:
        decision = Decision(False, "fitted on a DataFrame: column handling stays in scikit-learn")
    elif example is None or source.n_features is None:
        decision = Decision(False, "unknown input width: nothing to verify the conversion on")
    else:
        decision = _convert_and_check(source, verification_rows(example), out_dir / ONNX_FILE)
    (out_dir / DECISION_FILE).write_text(json.dumps(asdict(decision)))
    return decision


def _convert_and_check(source: object, rows: np.ndarray, onnx_path: Path) -> Decision:
    from serving.models.onnx import OnnxModel
    from serving.models.sklearn import SklearnModel

    assert isinstance(source, SklearnModel)
    try:
        onnx_path.write_bytes(_to_onnx(source))
        compiled = OnnxModel(onnx_path)
        same = _same(source.predict(rows), compiled.predict(rows))
    except Exception as exc:  # many estimators and custom steps have no converter
        return Decision(False, f"no ONNX conversion: {type(exc).__name__}: {str(exc)[:200]}")
    if not same:
        return Decision(False, f"ONNX answers differ beyond {TOLERANCE:g} on verification rows")
    one = rows[:1]
    sk_us, onnx_us = _best_us(source.predict, one), _best_us(compiled.predict, one)
    if onnx_us >= sk_us:
        return Decision(False, f"not faster ({onnx_us:.0f} us vs {sk_us:.0f} us)", sk_us, onnx_us)
    return Decision(
        True, f"equal answers, {sk_us:.0f} us -> {onnx_us:.0f} us per row", sk_us, onnx_us
    )


def _to_onnx(source: object) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    from serving.models.sklearn import SklearnModel

    assert isinstance(source, SklearnModel)
    estimator = source.estimator
    options = {id(estimator): {"zipmap": False}} if source.classes is not None else None
    onx = to_onnx(
        estimator,
        initial_types=[("input", DoubleTensorType([None, source.n_features]))],
        options=options,
        target_opset=17,
    )
    for key, value in (("classes", source.classes), ("allow_nan", source.allow_nan)):
        entry = onx.metadata_props.add()
        entry.key = key
        entry.value = json.dumps(value) if key == "classes" else str(value).lower()
    return bytes(onx.SerializeToString())


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


def _best_us(predict: Callable[[np.ndarray], Prediction], rows: np.ndarray) -> float:
    best = float("inf")
    for _ in range(50):
        started = time.perf_counter()
        predict(rows)
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def main(argv: list[str]) -> int:
    """``python -m serving.models.compiled MODEL_FILE OUT_DIR``."""
    model_file, out_dir = Path(argv[0]), Path(argv[1])
    decision = compile_model(model_file, out_dir)
    print(json.dumps(asdict(decision)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
