"""scikit-learn estimators (``model.joblib``, ``model.skops``).

Trust policy:

- ``model.joblib`` (and ``.pkl``) is a pickle. Unpickling runs whatever code the file names, so
  a joblib artifact is *trusted-artifact only*: serve it only from a source you control, and pin
  it with ``MODEL_SHA256``.
- ``model.skops`` is the safer scikit-learn format: skops rebuilds objects without pickle and
  only instantiates types it trusts. The server loads a skops file when every type in it is on
  skops' default trusted list (scikit-learn estimators, numpy, scipy and builtins) or on the
  operator's own list, ``ML_ENDPOINTS_SKOPS_TRUSTED`` (comma-separated, as
  ``skops.io.get_untrusted_types`` names them). Anything else is refused at load time with the
  list of offending types; the file never decides what is trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.errors import BadRequest
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
        if self._frame_columns is not None:
            try:
                import pandas  # noqa: F401
            except ImportError:
                raise RuntimeError(
                    f"the estimator was fitted on a pandas DataFrame ({len(self._frame_columns)} "
                    "named columns) and needs pandas to predict: install pandas next to the server"
                ) from None

    def predict(self, rows: np.ndarray) -> Prediction:
        """Predict labels (and probabilities) or values for ``rows``."""
        data: Any = rows
        if self._frame_columns is not None:
            import pandas as pd

            data = pd.DataFrame(rows, columns=self._frame_columns)
        try:
            if self._proba:
                assert self._classes is not None
                probabilities = np.asarray(self.estimator.predict_proba(data), dtype=np.float64)
                labels = self._classes[probabilities.argmax(axis=1)]
                return Prediction(labels, probabilities)
            return Prediction(np.asarray(self.estimator.predict(data)))
        except ValueError as exc:  # scikit-learn's own input checks, e.g. overflow in a step
            raise BadRequest(f"the model cannot use these rows: {exc}") from None


def load_joblib(path: Path) -> SklearnModel:
    """Load a joblib pickle. Unpickling runs code: only load artifacts you trust."""
    import joblib

    return SklearnModel(joblib.load(path))


def load_skops(path: Path, trusted: Sequence[str] = ()) -> SklearnModel:
    """Load a skops file holding only default-trusted types and those listed in ``trusted``."""
    try:
        from skops import io as skops_io
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(
            f"{path.name} needs skops: install ml-endpoints[skops] or ship model.joblib"
        ) from exc
    untrusted = sorted(set(skops_io.get_untrusted_types(file=path)) - set(trusted))
    if untrusted:
        raise UntrustedModelError(
            f"{path.name} holds types skops does not trust by default: {', '.join(untrusted)}. "
            "Review them; to load them anyway, list them in ML_ENDPOINTS_SKOPS_TRUSTED "
            "(comma-separated)"
        )
    return SklearnModel(skops_io.load(path, trusted=list(trusted)))


class UntrustedModelError(ValueError):
    """A model file holds types the operator has not trusted."""
