"""Class imbalance: per-class loss weights that really reach the loss with tf.data input.

Keras applies ``class_weight`` only to some input types; tfpilot instead maps every training
batch to ``(x, y, sample_weight)`` itself, so the weights are always applied.

Example:
    >>> import numpy as np
    >>> w = class_weights("auto", np.array([0, 0, 0, 1]), ["a", "b"])
    >>> [round(v, 3) for v in w]
    [0.667, 2.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfpilot.registry import did_you_mean


def class_weights(spec: str | dict[str, float], y: np.ndarray, class_names: list[str]) -> list[float] | None:
    """Resolve ``train.class_weight`` to one weight per class (None for "none").

    "auto" is the inverse class frequency, normalised so the mean weight over examples is 1
    (scikit-learn's "balanced"); a mapping gives weights by class name (others get 1.0).
    """
    if spec == "none":
        return None
    n = len(class_names)
    if spec == "auto":
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n).astype(np.float64)
        counts[counts == 0] = 1.0
        return (len(y) / (n * counts)).tolist()
    weights = [1.0] * n
    for name, w in dict(spec).items():
        if str(name) not in class_names:
            raise ValueError(
                f"train.class_weight names class {name!r}, which the dataset does not have."
                f"{did_you_mean(str(name), class_names)} Classes: {', '.join(class_names)}."
            )
        weights[class_names.index(str(name))] = float(w)
    return weights


def with_sample_weights(ds: Any, weights: list[float]) -> Any:
    """Map a batched ``(x, y)`` dataset to ``(x, y, w)`` with ``w = weights[class]``.

    Works for integer labels and for one-hot / soft labels (weight = sum_k y_k w_k).
    """
    import tensorflow as tf

    table = tf.constant(weights, tf.float32)

    def add(x: Any, y: Any) -> tuple[Any, Any, Any]:
        if y.shape.rank == 2 and y.shape[-1] == len(weights) and len(weights) > 1:
            w = tf.reduce_sum(tf.cast(y, tf.float32) * table, axis=-1)
        else:
            w = tf.gather(table, tf.cast(tf.reshape(y, [-1]), tf.int32))
        return x, y, w

    return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE)
