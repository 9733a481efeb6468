"""Layers of table models that carry what was learned from the training split.

* :class:`ImputeMissing` -- a number column's missing values (NaN) replaced by the
  training mean, with a missing-indicator beside it; a Keras ``Normalization`` adapted
  on the training split follows it in :mod:`tfpilot.models.multitask`.
* :class:`TargetScaling` -- a number head's output mapped from standardised units back
  to the column's units (``y = x * std + mean``, the training split's statistics), so the
  saved model predicts in the units of the table while the loss sees standardised values.

Both are registered serializable with ``get_config``; their statistics are weights, saved
in ``model.keras``, and they are written in ``keras.ops`` (NaN tested as ``x != x``, which
every converter can hold).

Example:
    >>> import numpy as np
    >>> layer = ImputeMissing()
    >>> layer.adapt(np.array([1.0, 3.0, np.nan]))
    >>> layer(np.array([np.nan, 2.0], "float32")).numpy().tolist()
    [[2.0, 1.0], [2.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import layers, ops

from tfpilot.registry import serializable


@serializable
class ImputeMissing(layers.Layer):
    """Number column (N,) with NaN for missing -> (N, 2): [value or the training mean, missing?].

    Args:
        fill: the value missing entries get before :meth:`adapt` (which sets the mean).
    """

    def __init__(self, fill: float = 0.0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # statistics stay float32 under mixed precision
        super().__init__(**kwargs)
        self.initial_fill = float(fill)
        self.fill = self.add_weight(name="fill", shape=(), initializer="zeros", trainable=False)
        self.fill.assign(self.initial_fill)

    def adapt(self, values: Any) -> None:
        """Set the fill value to the mean of the non-missing ``values`` (0 if all are missing)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        v = v[np.isfinite(v)]
        self.fill.assign(float(v.mean()) if v.size else 0.0)

    def call(self, inputs: Any) -> Any:
        x = ops.reshape(ops.cast(inputs, "float32"), (-1, 1))
        missing = ops.not_equal(x, x)  # NaN
        filled = ops.where(missing, ops.cast(self.fill, "float32") * ops.ones_like(x), x)
        return ops.concatenate([filled, ops.cast(missing, "float32")], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0] if input_shape else None, 2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill": self.initial_fill}


@serializable
class TargetScaling(layers.Layer):
    """(N, 1) standardised prediction -> (N,) in the column's units: ``x * std + mean``.

    Args:
        mean, std: the initial statistics (set from the training split by :meth:`adapt`).
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.initial = (float(mean), float(std))
        self.mean = self.add_weight(name="mean", shape=(), initializer="zeros", trainable=False)
        self.std = self.add_weight(name="std", shape=(), initializer="ones", trainable=False)
        self.mean.assign(self.initial[0])
        self.std.assign(self.initial[1])

    def adapt(self, values: Any) -> None:
        """Learn mean and std of the training targets (std 1 when they are constant)."""
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        std = float(v.std())
        self.mean.assign(float(v.mean()))
        self.std.assign(std if std > 1e-12 else 1.0)

    @property
    def statistics(self) -> tuple[float, float]:
        return float(ops.convert_to_numpy(self.mean)), float(ops.convert_to_numpy(self.std))

    def call(self, inputs: Any) -> Any:
        x = ops.reshape(ops.cast(inputs, "float32"), (-1,))
        return x * self.std + self.mean

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0],)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.initial[0], "std": self.initial[1]}
