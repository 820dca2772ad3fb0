"""The interface every model format implements, and what a prediction is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(slots=True)
class Prediction:
    """Predictions for ``n`` rows.

    ``outputs`` is the model's primary answer per row (class labels for classifiers, values for
    regressors, raw output rows otherwise); ``probabilities`` is ``(n, len(classes))`` for
    classifiers that have them.
    """

    outputs: np.ndarray
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.outputs.shape[0])

    def rows(self, start: int, stop: int) -> Prediction:
        """The predictions for rows ``start:stop`` (views, no copies)."""
        probabilities = None if self.probabilities is None else self.probabilities[start:stop]
        return Prediction(self.outputs[start:stop], probabilities)


class Model(Protocol):
    """A loaded model. ``predict`` takes validated rows: 2-D, float, right width, finite or NaN."""

    format: str
    n_features: int | None
    feature_names: list[str] | None
    classes: list[Any] | None
    allow_nan: bool

    def predict(self, rows: np.ndarray) -> Prediction:
        """Predict for every row of a 2-D float64 array."""
        ...
