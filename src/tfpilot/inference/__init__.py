"""Inference over trained models: the :class:`Predictor` and :func:`load`.

``TablePredictor`` is the old name of the :class:`Predictor` of a table model; it still
imports, with a :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from tfpilot.inference.predictor import InputError, Predictor, load

__all__ = ["InputError", "Predictor", "load"]


def __getattr__(name: str) -> Any:
    if name == "TablePredictor":
        warnings.warn("tfpilot.inference.TablePredictor is now tfpilot.inference.Predictor (one predictor for every "
                      "model)", DeprecationWarning, stacklevel=2)
        return Predictor
    raise AttributeError(f"module 'tfpilot.inference' has no attribute {name!r}")
