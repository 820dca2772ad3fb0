"""Compiled forms of models, used only when they give the same answers and are faster.

Candidates: scikit-learn estimators and pipelines on ONNX Runtime (skl2onnx, float64 end to
end), and tree ensembles — scikit-learn's, XGBoost's and LightGBM's — on Treelite's interpreter
(:mod:`serving.models.trees`). The compiler runs in a child process
(``python -m serving.models.compiled MODEL OUT``), once per model file (the result is cached by
content), so that the converters and their imports never occupy the serving worker's memory. It
runs the library's own predictor and each candidate on verification rows (the model's input
example, zeros, seeded perturbations, and the same with missing values when the model takes
them), and keeps a candidate only if its labels match exactly, its probabilities (or values)
within ``TOLERANCE``, and it is faster on one row and no slower on a full batch; the fastest such
candidate wins. Anything else — no converter, custom steps, DataFrame-fitted pipelines,
differing answers, no gain — keeps the library, and the reason is logged.
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
from serving.models.base import Model, Prediction

log = logging.getLogger("ml_endpoints.compiled")
TOLERANCE = 1e-9
#: Model files the compiler takes: pickles, XGBoost and LightGBM models (by name or suffix).
COMPILABLE_SUFFIXES = (".joblib", ".pkl", ".bst", ".json", ".ubj", ".txt")
COMPILABLE_NAMES = ("xgboost-model",)
ONNX_FILE = "model.onnx"
DECISION_FILE = "decision.json"
BATCH_ROWS = 64  # the server's default largest batch: a compiled form must not be slower there
#: Bumped when a decision's meaning changes, so cached decisions are made again.
_DECISION_VERSION = "2"
_PACKAGES = ("scikit-learn", "skl2onnx", "onnxruntime", "treelite", "xgboost-cpu", "lightgbm")


@dataclass(frozen=True)
class Decision:
    """What the compiler decided for one model file, and why.

    ``form`` is the compiled form that serves (``"onnx"``, ``"treelite"``) or ``None`` for the
    library itself; timings are microseconds per call on one row."""

    form: str | None
    reason: str
    source_format: str = ""
    source_us: float | None = None
    compiled_us: float | None = None


def compilable(model_file: Path) -> bool:
    """Whether the compiler takes ``model_file``."""
    return model_file.suffix in COMPILABLE_SUFFIXES or model_file.name in COMPILABLE_NAMES


def compile_cached(model_file: Path, cache_dir: Path, timeout: float = 300) -> Model | None:
    """The verified, faster compiled form of ``model_file``, loaded; ``None`` keeps the library."""
    key = hashlib.sha256(
        f"{_DECISION_VERSION}|{_versions()}|{file_sha256(model_file)}".encode()
    ).hexdigest()
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
                log.warning("compiler failed (keeping the library): %s", done.stderr[-500:])
                return None
    decision = Decision(**json.loads((out_dir / DECISION_FILE).read_text()))
    log.info("%s: %s", decision.form or "the library itself", decision.reason)
    if decision.form is None:
        return None
    model = load_compiled(decision.form, out_dir)
    model.format = f"{decision.source_format}->{decision.form}"
    return model


def _versions() -> str:
    found = []
    for package in _PACKAGES:
        try:
            found.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            found.append(f"{package}=-")
    return "|".join(found)


def load_compiled(form: str, directory: Path) -> Model:
    """A compiled form the compiler wrote into ``directory``."""
    if form == "onnx":
        from serving.models.onnx import OnnxModel

        return OnnxModel(directory / ONNX_FILE)
    if form == "treelite":
        from serving.models.trees import load_treelite

        return load_treelite(directory)
    raise ValueError(f"unknown compiled form {form!r}")


def compile_model(model_file: Path, out_dir: Path) -> Decision:
    """Convert, verify and time; write the chosen form (if any) and ``decision.json``."""
    from serving.models.examples import example_rows, verification_rows
    from serving.models.loader import load_model

    source = load_model(model_file)
    example = example_rows(source, model_file.parent)
    if source.feature_names is not None and source.format == "sklearn":
        decision = Decision(None, "fitted on a DataFrame: column handling stays in scikit-learn")
    elif example is None or source.n_features is None:
        decision = Decision(None, "unknown input width: nothing to verify a conversion on")
    else:
        rows = verification_rows(example)
        if source.allow_nan:
            holes = rows.copy()
            holes[::3, ::4] = np.nan
            rows = np.vstack([rows, holes])
        decision = _choose(source, rows, out_dir)
    decision = Decision(**{**asdict(decision), "source_format": source.format})
    (out_dir / DECISION_FILE).write_text(json.dumps(asdict(decision)))
    return decision


def _candidates(source: Model, out_dir: Path) -> list[tuple[str, Callable[[], Model | None]]]:
    """(form, build) for every compiled form that may exist for ``source``; ``build`` writes the
    form into ``out_dir`` and returns it loaded (``None``: no converter for this model)."""
    from serving.models.sklearn import SklearnModel

    def onnx() -> Model | None:
        from serving.models.onnx import OnnxModel

        assert isinstance(source, SklearnModel)
        (out_dir / ONNX_FILE).write_bytes(_to_onnx(source))
        return OnnxModel(out_dir / ONNX_FILE)

    def treelite() -> Model | None:
        from serving.models.trees import convert, load_treelite

        converted = convert(source)
        if converted is None:
            return None
        converted.save(out_dir)
        return load_treelite(out_dir)

    found: list[tuple[str, Callable[[], Model | None]]] = []
    if isinstance(source, SklearnModel):
        found.append(("onnx", onnx))
    found.append(("treelite", treelite))
    return found


def _choose(source: Model, rows: np.ndarray, out_dir: Path) -> Decision:
    """The fastest candidate that answers as ``source`` and beats it; else ``form=None``."""
    one, batch = rows[:1], rows[:BATCH_ROWS]
    source_one, source_batch = _best_us(source.predict, one), _best_us(source.predict, batch)
    verdicts: list[str] = []
    best: tuple[float, str] | None = None
    for form, build in _candidates(source, out_dir):
        try:
            compiled = build()
            if compiled is None:
                continue
            same = _same(source.predict(rows), compiled.predict(rows))
        except Exception as exc:  # many estimators and custom steps have no converter
            verdicts.append(f"{form}: no conversion ({type(exc).__name__}: {str(exc)[:150]})")
            continue
        if not same:
            verdicts.append(f"{form}: answers differ beyond {TOLERANCE:g} on verification rows")
            continue
        one_us, batch_us = _best_us(compiled.predict, one), _best_us(compiled.predict, batch)
        if one_us >= source_one or batch_us > source_batch:
            verdicts.append(
                f"{form}: not faster ({one_us:.0f} us vs {source_one:.0f} us per row, "
                f"{batch_us:.0f} us vs {source_batch:.0f} us per {len(batch)} rows)"
            )
            continue
        verdicts.append(
            f"{form}: equal answers, {source_one:.0f} us -> {one_us:.0f} us per row, "
            f"{source_batch:.0f} us -> {batch_us:.0f} us per {len(batch)} rows"
        )
        if best is None or one_us < best[0]:
            best = (one_us, form)
    summary = "; ".join(verdicts) or "no compiled form exists for this model"
    if best is None:
        return Decision(None, summary, source_us=source_one)
    chosen = best[1]
    _keep_only(chosen, out_dir)
    return Decision(chosen, summary, source_us=source_one, compiled_us=best[0])


def _keep_only(form: str, out_dir: Path) -> None:
    """Delete the files of the candidates that lost (a reload must find only the winner)."""
    from serving.models.trees import META_FILE, MODEL_FILE

    losers = {"onnx": [ONNX_FILE], "treelite": [MODEL_FILE, META_FILE]}
    for other, files in losers.items():
        if other != form:
            for name in files:
                (out_dir / name).unlink(missing_ok=True)


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
