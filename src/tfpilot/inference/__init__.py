"""Inference over trained models: the :class:`Predictor` and :func:`load`."""

from tfpilot.inference.loading import load
from tfpilot.inference.predictor import InputError, Predictor

__all__ = ["InputError", "Predictor", "load"]
