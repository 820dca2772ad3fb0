"""LightGBM boosters saved as text models (``Booster.save_model("model.txt")``).

A text model is parsed, never executed. Answers are the library's own: labels exactly as
``LGBMClassifier.predict`` gives them (arg-max of ``[1 - p, p]`` or of the class rows),
probabilities as ``Booster.predict`` computes them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Prediction

#: Text-model file names a directory is searched for.
TEXT_FILES = ("model.txt", "model.lgb")
_DEFAULT_NAME = re.compile(r"^Column_\d+$")  # names LightGBM makes up for numpy training data


class LightGBMModel:
    """A ``lightgbm.Booster`` behind the :class:`serving.models.base.Model` interface.

    ``binary`` answers labels and ``[1 - p, p]``, ``multiclass``/``multiclassova`` the arg-max and
    the class rows; other objectives (regression, ranking, ...) the booster's values.
    """

    format = "lightgbm"
    allow_nan = True  # missing values follow each split's learned default direction

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self._threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
        self.objective: str = str(booster.dump_model(num_iteration=0)["objective"]).split()[0]
        self.n_features: int | None = int(booster.num_feature())
        names = [str(n) for n in booster.feature_name()]
        self.feature_names: list[str] | None = (
            None if all(_DEFAULT_NAME.match(n) for n in names) else names
        )
        self.classes: list[Any] | None = None
        if self.objective == "binary":
            self.classes = [0, 1]
        elif self.objective in ("multiclass", "multiclassova"):
            self.classes = list(range(int(booster.params.get("num_class") or _num_class(booster))))

    def predict(self, rows: np.ndarray) -> Prediction:
        """``Booster.predict`` on the rows, then labels as LGBMClassifier."""
        raw = np.asarray(
            self.booster.predict(rows, num_threads=self._threads, validate_features=False)
        )
        if self.objective == "binary":
            probabilities = np.column_stack([1.0 - raw, raw])
            return Prediction(probabilities.argmax(axis=1), probabilities)
        if self.classes is not None:
            return Prediction(raw.argmax(axis=1), raw)
        return Prediction(raw)


def _num_class(booster: Any) -> int:
    return int(booster.dump_model(num_iteration=0)["num_class"])


def is_text_model(path: Path) -> bool:
    """Whether ``path`` starts like a LightGBM text model (``tree`` then ``version=``)."""
    with path.open("rb") as file:
        head = file.read(64)
    return head.startswith(b"tree\n") or head.startswith(b"tree\r\n")


def load_lightgbm(path: Path) -> LightGBMModel:
    """Load a LightGBM text model."""
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(f"{path.name} needs lightgbm: install ml-endpoints[lightgbm]") from exc
    if not is_text_model(path):
        raise ValueError(f"{path.name} is not a LightGBM text model (it must start with 'tree')")
    try:
        booster = lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise ValueError(f"{path.name} is not a LightGBM model lightgbm can read: {exc}") from None
    return LightGBMModel(booster)
