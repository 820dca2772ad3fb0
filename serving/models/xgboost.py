"""XGBoost boosters in their native formats (JSON, UBJSON, the legacy binary) or pickled.

File names the platforms' own containers read: SageMaker's XGBoost container loads
``xgboost-model`` (a pickle or a native model, whichever loads), Vertex AI's prebuilt XGBoost
container ``model.bst`` (native), ``model.joblib`` or ``model.pkl`` (pickles). Native files are
parsed, never executed; a pickle runs code when loaded (see :mod:`serving.models.sklearn`).

Answers are the library's own: labels exactly as ``XGBClassifier.predict`` gives them from the
booster's output, probabilities as the booster computes them (float32, widened without change).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Model, Prediction

#: Native-format file names (a directory is searched in this order after the pickles).
NATIVE_FILES = ("model.bst", "xgboost-model", "model.json", "model.ubj")
_PICKLE_MAGIC = b"\x80"  # protocol 2+ pickles (joblib writes them too) start with PROTO


class XGBoostModel:
    """An ``xgboost.Booster`` behind the :class:`serving.models.base.Model` interface.

    Classification objectives answer labels and probabilities the way ``XGBClassifier`` does:
    ``binary:logistic`` -> label ``p > 0.5`` and ``[1 - p, p]``; ``multi:softprob`` -> arg-max
    and the rows; ``binary:logitraw`` (margin > 0), ``binary:hinge`` and ``multi:softmax`` ->
    labels only. Other objectives (regression, ranking, survival) answer the booster's values.
    """

    format = "xgboost"
    allow_nan = True  # missing values follow each split's learned default direction

    def __init__(self, booster: Any) -> None:
        _remember_pandas_is_absent()
        self.booster = booster
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        booster.set_param({"nthread": threads})
        config = _config(booster)
        learner = config["learner"]
        self.objective: str = learner["objective"]["name"]
        num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
        self.n_features: int | None = int(booster.num_features())
        names = booster.feature_names
        self.feature_names: list[str] | None = list(names) if names else None
        self.classes: list[Any] | None = None
        if self.objective.startswith("binary:"):
            self.classes = [0, 1]
        elif self.objective.startswith("multi:"):
            self.classes = list(range(num_class))

    def predict(self, rows: np.ndarray) -> Prediction:
        """``inplace_predict`` on the rows (no DMatrix copy), then labels as XGBClassifier."""
        raw = np.asarray(self.booster.inplace_predict(rows, validate_features=False))
        objective = self.objective
        if objective == "binary:logistic":
            # 1 - p in the booster's float32, as XGBClassifier.predict_proba computes it
            probabilities = np.column_stack([1.0 - raw, raw]).astype(np.float64)
            return Prediction((raw > 0.5).astype(np.int64), probabilities)
        if objective == "multi:softprob":
            return Prediction(raw.argmax(axis=1), raw.astype(np.float64))
        if objective == "binary:logitraw":
            return Prediction((raw > 0).astype(np.int64))
        if objective in ("binary:hinge", "multi:softmax"):
            return Prediction(raw.astype(np.int64))
        return Prediction(raw)


class _Absent(importlib.abc.MetaPathFinder):
    """Answers ``import NAME`` for modules known to be absent without searching ``sys.path``."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


def _remember_pandas_is_absent() -> None:
    """xgboost runs ``import pandas`` on every predict to see whether its input is a DataFrame;
    without pandas (the image has none) each attempt searched ``sys.path`` again, which cost
    more than the prediction of a small batch. A finder in front of the others now says "no
    such module" at once (``sys.modules`` stays as it was: libraries look pandas up there)."""
    if any(isinstance(finder, _Absent) for finder in sys.meta_path):
        return
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.meta_path.insert(0, _Absent(frozenset({"pandas"})))


def _config(booster: Any) -> dict[str, Any]:
    import json

    config: dict[str, Any] = json.loads(booster.save_config())
    return config


def is_pickle(path: Path) -> bool:
    """Whether ``path`` holds a pickle (joblib files included) rather than a native model."""
    with path.open("rb") as file:
        return file.read(1) == _PICKLE_MAGIC


def load_booster(path: Path) -> Any:
    """A native XGBoost model file, whatever its name (XGBoost tells the formats apart by their
    first bytes: ``{"`` JSON, ``{`` + a type marker UBJSON, anything else the legacy binary)."""
    try:
        import xgboost
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(f"{path.name} needs xgboost: install ml-endpoints[xgboost]") from exc
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"{path.name} is not an XGBoost model this xgboost {xgboost.__version__} can read: "
            f"{first_line}"
        ) from None
    return booster


def load_xgboost(path: Path) -> Model:
    """Load ``path``: a native model, or a pickle (SageMaker's container pickles ``Booster``s
    into ``xgboost-model``; Vertex AI accepts a joblib ``model.bst``). Unpickling runs code:
    only load artifacts you trust."""
    if is_pickle(path):
        from serving.models.pickled import load_pickle

        return load_pickle(path)
    return XGBoostModel(load_booster(path))
