"""Example rows for warm-up and for checking a compiled model against its source."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from serving.models.base import Model

log = logging.getLogger("ml_endpoints.examples")

#: Files in a model directory holding example rows, as ``{"instances": rows}`` or ``rows``.
EXAMPLE_FILES = ("input_example.json", "sample.json")


def example_rows(model: Model, model_dir: Path | None) -> np.ndarray | None:
    """Rows from the model directory's example file, else one row of zeros, else ``None``."""
    if model_dir is not None:
        for name in EXAMPLE_FILES:
            path = model_dir / name
            if path.is_file():
                try:
                    document = json.loads(path.read_text())
                    rows = (
                        document.get("instances", document)
                        if isinstance(document, dict)
                        else (document)
                    )
                    array = np.asarray(rows, dtype=np.float64)
                    return array.reshape(1, -1) if array.ndim == 1 else array
                except (ValueError, TypeError) as exc:
                    log.warning("ignoring %s: %s", path, exc)
    if model.n_features is not None:
        return np.zeros((1, model.n_features))
    return None


def verification_rows(example: np.ndarray, n: int = 256) -> np.ndarray:
    """The examples, a row of zeros, and seeded perturbations of the examples."""
    rng = np.random.default_rng(0)
    picks = example[rng.integers(0, example.shape[0], n)]
    noisy = picks * rng.lognormal(0.0, 0.5, picks.shape) + rng.normal(0.0, 1.0, picks.shape)
    return np.vstack([example, np.zeros((1, example.shape[1])), noisy])
