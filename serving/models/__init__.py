"""Model formats behind one small interface: :class:`serving.models.base.Model`."""

from serving.models.base import Model, Prediction
from serving.models.loader import load_model

__all__ = ["Model", "Prediction", "load_model"]
