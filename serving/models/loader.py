"""Find and load the model in a local file or directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from serving.models.base import Model
from serving.models.handler import Handler, HandlerModel

#: Recognised file names, in the order a directory is searched.
MODEL_FILES = ("model.joblib", "model.skops", "model.onnx", "model.pt")


def _loaders() -> dict[str, Callable[[Path], Model]]:
    from serving.models.onnx import load_onnx
    from serving.models.sklearn import load_joblib, load_skops
    from serving.models.torchscript import load_torchscript

    return {
        ".joblib": load_joblib,
        ".pkl": load_joblib,
        ".skops": load_skops,
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


def load_model(path: Path, handler: Handler | None = None) -> Model:
    """Load the model at ``path``, letting the handler's ``model_fn``/``predict_fn`` take over."""
    if handler is not None and handler.model_fn is not None:
        model_dir = path if path.is_dir() else path.parent
        obj = handler.model_fn(str(model_dir))
        if handler.predict_fn is not None:
            return HandlerModel(handler.predict_fn, obj)
        return _wrap(obj)
    model_file = find_model_file(path)
    loader = _loaders().get(model_file.suffix)
    if loader is None:
        raise ValueError(
            f"unknown model format {model_file.name!r}; supported: {', '.join(_loaders())}"
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
    if type(obj).__module__.startswith("torch"):
        return TorchScriptModel(obj)
    raise TypeError(
        f"model_fn returned a {type(obj).__name__} without predict(); define predict_fn too"
    )
