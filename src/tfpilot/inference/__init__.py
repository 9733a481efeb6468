"""Inference over trained models: the :class:`Predictor` and :func:`load`."""

from tfpilot.inference.predictor import InputError, Predictor, load

__all__ = ["InputError", "Predictor", "load"]
