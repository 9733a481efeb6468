"""The date encoder of table models: raw date strings in, normalised date features out.

:class:`DateFeatures` reads each string by the column's format and computes the features
of :func:`tfpilot.data.dates.date_features` (year, month, day of week, days since a
reference date) with the same arithmetic, in TensorFlow ops, so a saved model takes raw
date strings. Each feature is standardised with the training split's mean and std (kept
as weights, learned by :meth:`DateFeatures.adapt`); a missing or unreadable date gets the
training mean (0 after standardising) and a missing-indicator.

Example:
    >>> import numpy as np
    >>> layer = DateFeatures(date_format="%Y-%m-%d")
    >>> layer.adapt(np.array(["2020-01-01", "2020-01-03"], dtype=object))
    >>> layer(np.array(["2020-01-02", ""], dtype=object)).numpy().round(2).tolist()
    [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from keras import layers

from tfpilot.data.dates import (DATE_FEATURES, REFERENCE_DATE, field_positions, date_features, features_from_fields,
                                reference_days)
from tfpilot.registry import serializable


class _TF:
    """TensorFlow under the names :func:`~tfpilot.data.dates.features_from_fields` uses."""

    where, stack, logical_and = staticmethod(tf.where), staticmethod(tf.stack), staticmethod(tf.logical_and)
    nan = tf.constant(np.nan, tf.float64)

    @staticmethod
    def cast_float(x: Any) -> Any:
        return tf.cast(x, tf.float64)


@serializable
class DateFeatures(layers.Layer):
    """Date strings (N,) -> (N, 5): the 4 standardised :data:`~tfpilot.data.dates.DATE_FEATURES`
    and a missing-indicator.

    Args:
        date_format: how the strings are written (:func:`~tfpilot.data.dates.parse_format`).
        reference: the ISO date ``days`` counts from (recorded in the layer's config).
    """

    def __init__(self, date_format: str = "%Y-%m-%d", reference: str = REFERENCE_DATE, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # statistics stay float32 under mixed precision
        super().__init__(**kwargs)
        self.date_format = date_format
        self.reference = reference
        self._where, self._need = field_positions(date_format)
        n = len(DATE_FEATURES)
        self.mean = self.add_weight(name="mean", shape=(n,), initializer="zeros", trainable=False)
        self.std = self.add_weight(name="std", shape=(n,), initializer="ones", trainable=False)

    def adapt(self, values: Any) -> None:
        """Learn each feature's mean and std from the training strings (missing ones left out)."""
        f = date_features(list(np.asarray(values, dtype=object).reshape(-1)), self.date_format, self.reference)
        f = f[~np.isnan(f).any(axis=1)].astype(np.float64)
        mean = f.mean(axis=0) if len(f) else np.zeros(len(DATE_FEATURES))
        std = f.std(axis=0) if len(f) else np.ones(len(DATE_FEATURES))
        self.mean.assign(mean.astype(np.float32))
        self.std.assign(np.where(std > 1e-12, std, 1.0).astype(np.float32))

    def features(self, inputs: Any) -> Any:
        """The raw (N, 4) features, float32 with NaN rows for missing dates: those of
        :func:`~tfpilot.data.dates.date_features`."""
        x = tf.reshape(tf.convert_to_tensor(inputs, tf.string), (-1,))
        runs = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(x, "[^0-9]+", " ")))
        n = len(self._where)
        cells = runs.to_tensor(default_value="0", shape=[None, n])
        numbers = tf.strings.to_number(cells, tf.float64)
        ok = runs.row_lengths() >= self._need
        fields = {f: numbers[:, j] for f, j in self._where.items()}
        out = features_from_fields(fields, ok, self._where, reference_days(self.reference), _TF)
        return tf.cast(out, tf.float32)

    def call(self, inputs: Any) -> Any:
        raw = self.features(inputs)
        missing = tf.reduce_any(tf.math.is_nan(raw), axis=1, keepdims=True)
        scaled = (raw - tf.cast(self.mean, tf.float32)) / tf.cast(self.std, tf.float32)
        scaled = tf.where(missing, tf.zeros_like(scaled), scaled)
        return tf.concat([scaled, tf.cast(missing, tf.float32)], axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], len(DATE_FEATURES) + 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "date_format": self.date_format, "reference": self.reference}
