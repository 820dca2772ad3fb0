"""The bundled demo models: trained on scikit-learn's own datasets, deterministic, no download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

DemoKind = Literal["logreg", "hgb"]
SAMPLE_FILE = "input_example.json"


def demo_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The breast-cancer data set bundled with scikit-learn: rows, labels, feature names."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, data.target, [str(n) for n in data.feature_names]


def build_demo_model(kind: DemoKind = "logreg") -> Any:
    """A fitted classifier: standardised logistic regression, or histogram gradient boosting."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows, labels, _ = demo_data()
    if kind == "logreg":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    elif kind == "hgb":
        model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    else:
        raise ValueError(f"unknown demo model kind {kind!r}; use 'logreg' or 'hgb'")
    return model.fit(rows, labels)


def write_demo_artifacts(out_dir: Path, kind: DemoKind = "logreg", *, onnx: bool = False) -> Path:
    """Write ``model.joblib`` (``model.onnx`` if asked), an input example and a drift reference
    profile to ``out_dir``."""
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_demo_model(kind)
    joblib.dump(model, out_dir / "model.joblib")
    rows, _, _ = demo_data()
    (out_dir / SAMPLE_FILE).write_text(json.dumps({"instances": rows[:2].tolist()}))
    if onnx:
        _write_onnx(model, rows.shape[1], out_dir / "model.onnx")
    from serving.drift import DriftProfile

    profile = DriftProfile.fit(rows, demo_data()[2], outputs=model.predict(rows))
    profile.save(out_dir / "drift_reference.json")
    return out_dir


def _write_onnx(model: Any, n_features: int, path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    onx = to_onnx(
        model,
        initial_types=[("input", DoubleTensorType([None, n_features]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    entry = onx.metadata_props.add()
    entry.key, entry.value = "classes", json.dumps(np.asarray(model.classes_).tolist())
    path.write_bytes(onx.SerializeToString())
