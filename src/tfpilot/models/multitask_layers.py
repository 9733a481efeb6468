"""Layers of the table model (:mod:`tfpilot.models.multitask`) beside the column encoders.

:class:`InputDropout` -- per-input ("modality") dropout: during training each example loses
one input column's whole feature vector at a time with probability ``rate``, so the combiner
cannot lean on the strongest input alone and learns what the others add.

Example:
    >>> import numpy as np
    >>> layer = InputDropout(0.5, seed=0)
    >>> x = np.ones((4, 3), "float32")
    >>> float(layer(x, training=False).numpy().sum())  # inference: unchanged
    12.0
    >>> sorted(set(layer(x, training=True).numpy().ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers

from tfpilot.errors import UserError
from tfpilot.registry import serializable


@serializable
class InputDropout(layers.Layer):
    """Zero an input's whole feature vector (dense or sparse) for a random ``rate`` of the
    examples while training, and scale the kept ones by ``1 / (1 - rate)``.

    Args:
        rate: the probability that an example loses this input (0 <= rate < 1).
        seed: the random seed.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise UserError(f"input_dropout must be in [0, 1), got {rate}")
        self.rate, self.seed = float(rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0.0:
            return x
        sparse = isinstance(x, tf.SparseTensor)
        batch = x.dense_shape[0] if sparse else tf.shape(x, out_type=tf.int64)[0]
        keep = keras.random.uniform(tf.reshape(batch, [1]), seed=self.seed_generator) >= self.rate
        mask = tf.cast(keep, tf.float32) / (1.0 - self.rate)
        if sparse:
            return tf.SparseTensor(x.indices, x.values * tf.gather(mask, x.indices[:, 0]), x.dense_shape)
        mask = tf.reshape(tf.cast(mask, x.dtype), tf.concat([tf.shape(mask), tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        return x * mask

    def compute_output_spec(self, x: Any, training: bool | None = None) -> Any:
        return keras.KerasTensor(x.shape, dtype=x.dtype, sparse=bool(getattr(x, "sparse", False)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
