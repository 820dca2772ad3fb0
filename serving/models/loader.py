"""Find and load the model in a local file or directory.

A directory is searched for :data:`MODEL_FILES` in that order and the first one found is loaded:
``model.skops`` wins over the pickles (the safer file of the same model); then the names the
platforms' own containers read — ``model.joblib`` and ``model.pkl`` (scikit-learn, and Vertex
AI's XGBoost container), ``model.bst`` (Vertex AI's XGBoost), ``xgboost-model`` (SageMaker's
XGBoost) — then XGBoost's ``model.json``/``model.ubj``, LightGBM's ``model.txt``, ONNX and
TorchScript. Point ``--model`` at a file to choose another.

``.joblib``/``.pkl`` files (and a pickled ``xgboost-model``) are unpickled: load only artifacts
you trust (see :mod:`serving.models.sklearn`). XGBoost's, LightGBM's, ONNX and skops files are
parsed, not executed.
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
MODEL_FILES = (
    "model.skops",
    "model.joblib",
    "model.pkl",
    "model.bst",
    "xgboost-model",
    "model.json",
    "model.ubj",
    "model.txt",
    "model.onnx",
    "model.pt",
)


def _loaders(skops_trusted: Sequence[str] = ()) -> dict[str, Callable[[Path], Model]]:
    """Loaders by file suffix, and by whole name for names without one (``xgboost-model``)."""
    from serving.models.lightgbm import load_lightgbm
    from serving.models.onnx import load_onnx
    from serving.models.pickled import load_pickle
    from serving.models.sklearn import load_skops
    from serving.models.torchscript import load_torchscript
    from serving.models.xgboost import load_xgboost

    return {
        ".joblib": load_pickle,
        ".pkl": load_pickle,
        ".skops": partial(load_skops, trusted=skops_trusted),
        ".bst": load_xgboost,
        "xgboost-model": load_xgboost,
        ".json": load_xgboost,
        ".ubj": load_xgboost,
        ".txt": load_lightgbm,
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
    loader = loaders.get(model_file.name) or loaders.get(model_file.suffix)
    if loader is None:
        raise ValueError(
            f"unknown model format {model_file.name!r}; supported: {', '.join(loaders)}"
        )
    model = loader(model_file)
    if handler is not None and handler.predict_fn is not None:
        return HandlerModel(handler.predict_fn, _library_object(model))
    return model


def _library_object(model: Model) -> Any:
    """What a user's ``predict_fn`` receives: the estimator or booster itself, as the platforms'
    containers pass it."""
    for attribute in ("estimator", "booster"):
        if hasattr(model, attribute):
            return getattr(model, attribute)
    return model


def _wrap(obj: Any) -> Model:
    """Wrap what a ``model_fn`` returned when no ``predict_fn`` says how to call it."""
    from serving.models.pickled import wrap
    from serving.models.torchscript import TorchScriptModel

    torch = sys.modules.get("torch")  # imported by model_fn if it built a torch module
    if torch is not None and isinstance(obj, torch.nn.Module):
        return TorchScriptModel(obj)
    try:
        return wrap(obj, "model_fn's result")
    except TypeError:
        raise TypeError(
            f"model_fn returned a {type(obj).__name__} without predict(); define predict_fn too"
        ) from None
