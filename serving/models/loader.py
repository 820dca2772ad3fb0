"""Find and load the model in a local file or directory.

A directory is searched for :data:`MODEL_FILES` in that order and the first one found is loaded:
``model.skops`` wins over ``model.joblib`` (the safer file of the same model), and both win over
``model.onnx`` and ``model.pt``. Point ``--model`` at a file to choose another.

``.joblib``/``.pkl`` files are unpickled: load only artifacts you trust (see
:mod:`serving.models.sklearn`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from serving.models.base import Model
from serving.models.handler import Handler, HandlerModel

#: Recognised file names, in the order a directory is searched.
MODEL_FILES = ("model.skops", "model.joblib", "model.onnx", "model.pt")


def _loaders(skops_trusted: Sequence[str] = ()) -> dict[str, Callable[[Path], Model]]:
    from serving.models.onnx import load_onnx
    from serving.models.sklearn import load_joblib, load_skops
    from serving.models.torchscript import load_torchscript

    return {
        ".joblib": load_joblib,
        ".pkl": load_joblib,
        ".skops": partial(load_skops, trusted=skops_trusted),
        ".onnx": load_onnx,
        ".pt": load_torchscript,
        ".pth": load_torchscript,
    }


def find_model_file(path: Path) -> Path:
    """``path`` itself if it is a file, else the first of :data:`MODEL_FILES` inside it."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} does not exist")
    for name in MODEL_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(p.name for p in path.iterdir())[:10]
    raise FileNotFoundError(
        f"no model file in {path}: expected one of {', '.join(MODEL_FILES)}; found {found}"
    )


def load_model(
    path: Path, handler: Handler | None = None, *, skops_trusted: Sequence[str] = ()
) -> Model:
    """Load the model at ``path``, letting the handler's ``model_fn``/``predict_fn`` take over.

    ``skops_trusted`` lists the types a ``.skops`` file may hold beyond skops' defaults.
    """
    if handler is not None and handler.model_fn is not None:
        model_dir = path if path.is_dir() else path.parent
        obj = handler.model_fn(str(model_dir))
        if handler.predict_fn is not None:
            return HandlerModel(handler.predict_fn, obj)
        return _wrap(obj)
    model_file = find_model_file(path)
    loaders = _loaders(skops_trusted)
    loader = loaders.get(model_file.suffix)
    if loader is None:
        raise ValueError(
            f"unknown model format {model_file.name!r}; supported: {', '.join(loaders)}"
        )
    model = loader(model_file)
    if handler is not None and handler.predict_fn is not None:
        inner = model.estimator if hasattr(model, "estimator") else model
        return HandlerModel(handler.predict_fn, inner)
    return model


def _wrap(obj: Any) -> Model:
    """Wrap what a ``model_fn`` returned when no ``predict_fn`` says how to call it."""
    from serving.models.sklearn import SklearnModel
    from serving.models.torchscript import TorchScriptModel

    if hasattr(obj, "predict") and callable(obj.predict):
        return SklearnModel(obj)
    torch = sys.modules.get("torch")  # imported by model_fn if it built a torch module
    if torch is not None and isinstance(obj, torch.nn.Module):
        return TorchScriptModel(obj)
    raise TypeError(
        f"model_fn returned a {type(obj).__name__} without predict(); define predict_fn too"
    )
