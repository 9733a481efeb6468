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

from collections.abc import Callable
from typing import Any

import numpy as np

from tfpilot.errors import UserError
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
            raise UserError(
                f"train.class_weight names class {name!r}, which the dataset does not have."
                f"{did_you_mean(str(name), class_names)} Classes: {', '.join(class_names)}."
            )
        weights[class_names.index(str(name))] = float(w)
    return weights


def sample_weight_map(train: Any, data: Any) -> Callable[[Any], Any] | None:
    """The training stream's map adding ``train.class_weight`` as per-example weights, or None
    ("none"). The weights are those of the class head's classes (a classifier's one head; a
    table's ``train.class_head``, or its only category/binary head); a table's other heads
    get weight 1.

    Args:
        train: the ``train`` section.
        data: the prepared data (its ``spec``, ``targets`` and ``features``).

    Raises:
        ValueError: no class head to weigh by, or a class name the head does not have.
    """
    from tfpilot.data.registry import class_head

    if train.class_weight == "none":
        return None
    head = class_head(data.spec, train.class_head, "train.class_weight")
    weights = class_weights(train.class_weight, data.targets("train")[head.key], list(head.classes))
    key = None if data.features is None else head.key
    return lambda ds: with_sample_weights(ds, weights, key)


def with_sample_weights(ds: Any, weights: list[float], head: str | None = None) -> Any:
    """Map a batched ``(x, y)`` dataset to ``(x, y, w)`` with ``w = weights[class]``.

    Works for integer labels and for one-hot / soft labels (weight = sum_k y_k w_k). With
    ``head``, ``y`` is a dict of targets: ``w`` is a dict too, ``weights[y[head]]`` for that
    head and 1 for the others.
    """
    import tensorflow as tf

    table = tf.constant(weights, tf.float32)

    def weigh(y: Any) -> Any:
        if y.shape.rank == 2 and y.shape[-1] == len(weights) and len(weights) > 1:
            return tf.reduce_sum(tf.cast(y, tf.float32) * table, axis=-1)
        return tf.gather(table, tf.cast(tf.reshape(y, [-1]), tf.int32))

    def add(x: Any, y: Any) -> tuple[Any, Any, Any]:
        if head is None:
            return x, y, weigh(y)
        w = weigh(y[head])
        return x, y, {k: w if k == head else tf.ones_like(w) for k in y}

    return ds.map(add, num_parallel_calls=tf.data.AUTOTUNE)
