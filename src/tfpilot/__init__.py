"""tfpilot: from data to a deployed classifier on TensorFlow 2 / Keras 3.

The public API is imported lazily, so ``import tfpilot`` is cheap and has no side
effects (TensorFlow loads on first use).

Example:
    >>> import tfpilot
    >>> run = tfpilot.train("configs/mnist_cnn.yaml", epochs=1)  # doctest: +SKIP
    >>> tfpilot.load(run.path).predict(["digit.png"])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "train": "tfpilot.api",
    "resume": "tfpilot.api",
    "tune": "tfpilot.api",
    "resume_tune": "tfpilot.api",
    "Trainer": "tfpilot.api",
    "Run": "tfpilot.runs",
    "load": "tfpilot.api",
    "Predictor": "tfpilot.api",
    "evaluate": "tfpilot.api",
    "report": "tfpilot.api",
    "gradcam": "tfpilot.evaluation.gradcam",
    "GradCAM": "tfpilot.evaluation.gradcam",
    "explain_text": "tfpilot.evaluation.explain_text",
    "load_config": "tfpilot.config",
    "Config": "tfpilot.config",
    "create_model": "tfpilot.models",
    "list_models": "tfpilot.models",
    "register_model": "tfpilot.models",
    "list_datasets": "tfpilot.data",
    "register_dataset": "tfpilot.data",
    "prepare_data": "tfpilot.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfpilot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
