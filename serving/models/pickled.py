"""Pickled models (``model.joblib``, ``model.pkl``, a pickled ``xgboost-model``).

A pickle runs code when it is loaded: serve only artifacts you built or trust, and pin them with
``MODEL_SHA256`` (see :mod:`serving.models.sklearn`). What the pickle holds decides how it is
served: an ``xgboost.Booster`` or ``lightgbm.Booster`` by its library's own predictor, anything
else (scikit-learn estimators and pipelines, ``XGBClassifier``, ``LGBMClassifier``) through its
scikit-learn interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.models.base import Model


def wrap(obj: Any, source: str = "the pickle") -> Model:
    """The :class:`~serving.models.base.Model` serving an unpickled object (``source`` names the
    file in errors)."""
    library = type(obj).__module__.partition(".")[0]
    if type(obj).__name__ == "Booster" and library == "xgboost":
        from serving.models.xgboost import XGBoostModel

        return XGBoostModel(obj)
    if type(obj).__name__ == "Booster" and library == "lightgbm":
        from serving.models.lightgbm import LightGBMModel

        return LightGBMModel(obj)
    if not callable(getattr(obj, "predict", None)):
        raise TypeError(
            f"{source} holds a {type(obj).__module__}.{type(obj).__name__}, which has no "
            "predict(); save a fitted estimator or booster"
        )
    from serving.models.sklearn import SklearnModel

    return SklearnModel(obj)


def load_pickle(path: Path) -> Model:
    """Unpickle ``path`` with joblib (plain pickles load too). Runs code: trusted files only."""
    import joblib

    return wrap(joblib.load(path), path.name)
