"""scikit-learn estimators (``model.joblib``, ``model.skops``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Prediction


class SklearnModel:
    """Any fitted estimator with ``predict`` (and ``predict_proba`` for classifiers).

    For classifiers the label is the arg-max of ``predict_proba``: one model call per batch gives
    both the class and its probability.
    """

    format = "sklearn"

    def __init__(self, estimator: Any) -> None:
        import sklearn
        from sklearn.utils import get_tags

        # Rows are checked for shape and finiteness before they get here.
        sklearn.set_config(assume_finite=True)
        self.estimator = estimator
        n_features = getattr(estimator, "n_features_in_", None)
        self.n_features: int | None = int(n_features) if n_features is not None else None
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names: list[str] | None = (
            [str(n) for n in names] if names is not None else None
        )
        classes = getattr(estimator, "classes_", None)
        self._proba = classes is not None and hasattr(estimator, "predict_proba")
        self._classes = np.asarray(classes) if classes is not None else None
        self.classes: list[Any] | None = (
            self._classes.tolist() if self._classes is not None else None
        )
        try:
            self.allow_nan = bool(get_tags(estimator).input_tags.allow_nan)
        except (AttributeError, TypeError, ValueError):
            self.allow_nan = False
        self._frame_columns = self.feature_names  # estimators fitted on DataFrames want DataFrames

    def predict(self, rows: np.ndarray) -> Prediction:
        """Predict labels (and probabilities) or values for ``rows``."""
        data: Any = rows
        if self._frame_columns is not None:
            import pandas as pd

            data = pd.DataFrame(rows, columns=self._frame_columns)
        if self._proba:
            assert self._classes is not None
            probabilities = np.asarray(self.estimator.predict_proba(data), dtype=np.float64)
            labels = self._classes[probabilities.argmax(axis=1)]
            return Prediction(labels, probabilities)
        return Prediction(np.asarray(self.estimator.predict(data)))


def load_joblib(path: Path) -> SklearnModel:
    """Load a joblib pickle. Unpickling runs code: only load artifacts you trust."""
    import joblib

    return SklearnModel(joblib.load(path))


def load_skops(path: Path) -> SklearnModel:
    """Load a skops file, trusting only the types skops reports and the user has not vetoed."""
    try:
        from skops import io as skops_io
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(
            f"{path.name} needs skops: install ml-endpoints[skops] or ship model.joblib"
        ) from exc
    untrusted = skops_io.get_untrusted_types(file=path)
    return SklearnModel(skops_io.load(path, trusted=untrusted))
