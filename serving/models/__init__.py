"""Model formats behind one small interface: :class:`serving.models.base.Model`.

Formats: scikit-learn ``model.skops`` (safer: only trusted types are rebuilt) and
``model.joblib`` (a pickle: trusted artifacts only, it can run code when loaded), ONNX
``model.onnx``, TorchScript ``model.pt``, and user handlers in SageMaker's convention. See
:mod:`serving.models.sklearn` for the trust policy and :mod:`serving.models.loader` for which
file a directory serves.
"""

from serving.models.base import Model, Prediction
from serving.models.loader import load_model

__all__ = ["Model", "Prediction", "load_model"]
