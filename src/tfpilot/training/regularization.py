"""L1/L2 weight penalties on every Dense/Conv kernel of a built model.

Example:
    >>> from tfpilot.models import create_model
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("mlp", InputSpec.image(8, 8, 1), 3)
    >>> apply_kernel_regularization(model, l1=0.0, l2=1e-4)
    2
"""

from __future__ import annotations

from typing import Any


def _layers(model: Any):
    for layer in model.layers:
        if hasattr(layer, "layers"):  # nested models (e.g. a transfer-learning backbone)
            yield from _layers(layer)
        else:
            yield layer


def apply_kernel_regularization(model: Any, l1: float = 0.0, l2: float = 0.0) -> int:
    """Add an L1/L2 penalty to the kernel of every layer that has one; returns how many.

    The penalty is attached to the kernel variable (so it enters the loss) and to the
    layer's ``kernel_regularizer`` (so it is saved with the model).
    """
    import keras

    if not (l1 or l2):
        return 0
    count = 0
    for layer in _layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(layer, "kernel_regularizer"):
            continue
        reg = keras.regularizers.L1L2(l1=l1, l2=l2)
        layer.kernel_regularizer = reg
        kernel.regularizer = reg
        count += 1
    return count
