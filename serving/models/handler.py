"""User inference scripts in SageMaker's convention: ``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``. Each function is optional and overrides one step of the server's own pipeline.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from serving.errors import ModelError, ServingError
from serving.models.base import Prediction

log = logging.getLogger("ml_endpoints.handler")

SAGEMAKER_CODE_DIR = Path("/opt/ml/code")


@dataclass(frozen=True)
class Handler:
    """The hooks found in a user module (``None`` where the module does not define one)."""

    module: ModuleType
    model_fn: Callable[[str], Any] | None
    input_fn: Callable[[bytes, str], Any] | None
    predict_fn: Callable[[Any, Any], Any] | None
    output_fn: Callable[[Any, str], Any] | None

    @property
    def overrides_invocations(self) -> bool:
        """True when ``/invocations`` must run the user's decode/encode steps."""
        return self.input_fn is not None or self.output_fn is not None


def load_handler(spec: str, model_dir: Path | None) -> Handler:
    """Import ``spec``: a ``.py`` file (as given, under ``MODEL_DIR/code`` or ``/opt/ml/code``)
    or an importable module name."""
    if spec.endswith(".py"):
        candidates = [Path(spec)]
        if model_dir is not None:
            candidates.append(model_dir / "code" / spec)
        candidates.append(SAGEMAKER_CODE_DIR / spec)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            tried = ", ".join(str(p) for p in candidates)
            raise FileNotFoundError(f"handler {spec!r} not found; tried {tried}")
        module_spec = importlib.util.spec_from_file_location(f"ml_endpoints_user_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import handler file {path}")
        module = importlib.util.module_from_spec(module_spec)
        # Registered before running, as an import would: dataclasses, typing and pickle look
        # the module up by name while it executes.
        sys.modules[module_spec.name] = module
        sys.path.insert(0, str(path.parent))  # let the script import its neighbours
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_spec.name]
            raise
    else:
        module = importlib.import_module(spec)
    hooks = {
        name: getattr(module, name, None)
        for name in ("model_fn", "input_fn", "predict_fn", "output_fn")
    }
    for name, hook in hooks.items():
        if hook is not None and not callable(hook):
            raise TypeError(f"handler {spec!r}: {name} is not callable")
    if not any(hooks.values()):
        raise ValueError(
            f"handler {spec!r} defines none of model_fn, input_fn, predict_fn, output_fn"
        )
    return Handler(module=module, **hooks)


class HandlerModel:
    """A model whose prediction step is the user's ``predict_fn(data, model)``."""

    format = "handler"
    n_features: int | None = None
    feature_names: list[str] | None = None
    classes: list[Any] | None = None
    allow_nan = True

    def __init__(self, predict_fn: Callable[[Any, Any], Any], model: Any) -> None:
        self.predict_fn = predict_fn
        self.model = model

    def predict(self, rows: np.ndarray) -> Prediction:
        """Call ``predict_fn``; its result must have one entry per row."""
        return Prediction(np.asarray(self.raw_predict(rows)))

    def raw_predict(self, data: Any) -> Any:
        """Call ``predict_fn``; its failures become 500s that name it (``ServingError``s, such as
        a ``BadRequest`` the user raises, pass through)."""
        try:
            return self.predict_fn(data, self.model)
        except ServingError:
            raise
        except Exception as exc:
            log.exception("predict_fn failed")
            raise ModelError(f"predict_fn failed: {type(exc).__name__}: {exc}") from exc
