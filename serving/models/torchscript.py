"""TorchScript models (``model.pt``), CPU inference (needs the ``torch`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serving.models.base import Prediction


class TorchScriptModel:
    """A scripted or traced module taking one float32 ``(n, features)`` tensor.

    Its output rows are returned as they are; send a handler with ``predict_fn`` for anything else.
    """

    format = "torchscript"
    n_features: int | None = None
    feature_names: list[str] | None = None
    classes: list[Any] | None = None
    allow_nan = True

    def __init__(self, module: Any) -> None:
        self.module = module
        self.module.eval()

    def predict(self, rows: np.ndarray) -> Prediction:
        """Run the module under ``torch.inference_mode``."""
        import torch

        with torch.inference_mode():
            output = self.module(torch.from_numpy(rows.astype(np.float32)))
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"the module returned a {type(output).__name__}, not one tensor; "
                "send a handler with predict_fn to post-process other outputs"
            )
        return Prediction(output.detach().cpu().numpy())


def load_torchscript(path: Path) -> TorchScriptModel:
    """Load with ``torch.jit.load`` onto the CPU."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError(f"{path.name} needs torch: install ml-endpoints[torch]") from exc
    return TorchScriptModel(torch.jit.load(str(path), map_location="cpu"))
