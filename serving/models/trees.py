"""Tree ensembles on Treelite's interpreter (GTIL): a compiled form kept only when it is exact.

scikit-learn's tree ensembles (``HistGradientBoosting*``, ``RandomForest*``, ``ExtraTrees*``,
``GradientBoosting*``), XGBoost and LightGBM boosters convert to a Treelite model, which GTIL
evaluates without the library's per-call overhead (scikit-learn's input checks and thread pool
cost milliseconds per call; a single row through GTIL costs microseconds). Whether a converted
model may serve is decided by :mod:`serving.models.compiled`, exactly as for ONNX: labels equal
to the library's own, probabilities within 1e-9 on verification rows (with missing values), and
faster. XGBoost's float32 arithmetic, for one, is not reproduced to 1e-9, so XGBoost keeps its
own predictor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Model, Prediction

MODEL_FILE = "model.treelite"
META_FILE = "treelite.json"
#: scikit-learn estimators Treelite imports (``treelite.sklearn.import_model``).
SKLEARN_ENSEMBLES = frozenset(
    {
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
    }
)


class TreeliteModel:
    """A Treelite model evaluated by GTIL, answering as the model it was converted from."""

    format = "treelite"

    def __init__(
        self,
        model: Any,
        *,
        classes: list[Any] | None,
        n_features: int | None,
        feature_names: list[str] | None,
        allow_nan: bool,
    ) -> None:
        self.model = model
        self.classes = classes
        self._classes = None if classes is None else np.asarray(classes)
        self.n_features = n_features
        self.feature_names = feature_names
        self.allow_nan = allow_nan
        self._dtype = np.float32 if model.input_type == "float32" else np.float64
        self._threads = int(os.environ.get("OMP_NUM_THREADS", "1"))

    def predict(self, rows: np.ndarray) -> Prediction:
        """GTIL's outputs, shaped as the source model's: labels by arg-max of the probabilities
        (``[1 - p, p]`` for one output column), or the values of a regressor."""
        from treelite import gtil

        data = rows if rows.dtype == self._dtype else rows.astype(self._dtype)
        raw = np.asarray(gtil.predict(self.model, data, nthread=self._threads))
        raw = raw.reshape(rows.shape[0], -1).astype(np.float64, copy=False)
        if self._classes is None:
            return Prediction(raw[:, 0] if raw.shape[1] == 1 else raw)
        if raw.shape[1] == 1:
            positive = raw[:, 0]
            raw = np.column_stack([1.0 - positive, positive])
        return Prediction(self._classes[raw.argmax(axis=1)], raw)

    def save(self, directory: Path) -> None:
        """Write the Treelite checkpoint and what the interface needs beside it."""
        self.model.serialize(str(directory / MODEL_FILE))
        meta = {
            "classes": self.classes,
            "n_features": self.n_features,
            "feature_names": self.feature_names,
            "allow_nan": self.allow_nan,
        }
        (directory / META_FILE).write_text(json.dumps(meta))


def load_treelite(directory: Path) -> TreeliteModel:
    """A model :meth:`TreeliteModel.save` wrote."""
    import treelite

    meta = json.loads((directory / META_FILE).read_text())
    return TreeliteModel(treelite.Model.deserialize(str(directory / MODEL_FILE)), **meta)


def convert(source: Model) -> TreeliteModel | None:
    """The Treelite form of ``source``, or ``None`` when Treelite has no importer for it.

    Raises what Treelite raises for an estimator it claims but cannot convert."""
    import treelite

    from serving.models.lightgbm import LightGBMModel
    from serving.models.sklearn import SklearnModel
    from serving.models.xgboost import XGBoostModel

    if isinstance(source, XGBoostModel):
        model = treelite.frontend.from_xgboost(source.booster)
    elif isinstance(source, LightGBMModel):
        model = treelite.frontend.from_lightgbm(source.booster)
    elif (
        isinstance(source, SklearnModel)
        and type(source.estimator).__name__ in SKLEARN_ENSEMBLES
        and type(source.estimator).__module__.startswith("sklearn.")
    ):
        model = treelite.sklearn.import_model(source.estimator)
    else:
        return None
    return TreeliteModel(
        model,
        classes=source.classes,
        n_features=source.n_features,
        feature_names=source.feature_names,
        allow_nan=source.allow_nan,
    )
