"""The layer that joins an ensemble's members: a fixed weighted average of their outputs.

:class:`WeightedAverage` takes one tensor per member (a head's class probabilities (N, C), a
binary head's P(classes[1]) (N,), or a number head's values (N,)) and returns
``sum_i w_i * x_i`` with weights that sum to 1, chosen on the validation split
(:func:`tfpilot.training.ensemble.caruana_weights`). The weights are part of the layer's config,
so a saved ensemble loads and exports with them.

Example:
    >>> import numpy as np
    >>> layer = WeightedAverage([0.75, 0.25])
    >>> np.asarray(layer([np.array([1.0, 0.0], "float32"), np.array([0.0, 4.0], "float32")])).tolist()
    [0.75, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import layers

from tfpilot.registry import serializable


@serializable
class WeightedAverage(layers.Layer):
    """``sum_i weights[i] * inputs[i]``: the members' outputs of one head, averaged with fixed weights.

    Args:
        weights: one non-negative weight per input; normalised to sum to 1.

    Raises:
        ValueError: no weight, a negative one, or all zero.
    """

    def __init__(self, weights: Sequence[float], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        values = [float(w) for w in weights]
        if not values or min(values) < 0 or sum(values) <= 0:
            raise ValueError(f"ensemble weights must be non-negative and not all zero, got {values}")
        total = sum(values)
        self.member_weights = [w / total for w in values]

    def call(self, inputs: Sequence[Any]) -> Any:
        import tensorflow as tf

        if len(inputs) != len(self.member_weights):
            raise ValueError(f"{self.name}: {len(inputs)} inputs for {len(self.member_weights)} weights")
        return tf.add_n([tf.cast(x, tf.float32) * w for x, w in zip(inputs, self.member_weights)])

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": list(self.member_weights)}
