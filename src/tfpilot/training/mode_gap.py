"""The train/inference-mode gap: does the model predict as well in inference mode (how the
saved model predicts) as in training mode, on the same training examples?

A model that is much better in training mode has a layer that behaves differently at
inference -- nearly always BatchNormalization whose moving statistics never caught up with
the weights (see :mod:`tfpilot.training.precise_bn`). Its training curves look fine; its
validation and test accuracy do not.

"Training mode" here is BatchNorm's: every layer runs in training mode except the random
ones (dropout of every kind, Gaussian noise, random augmentation layers, an RNN's dropout),
which run in inference mode, as they would at prediction. Dropout left on would make training
mode worse by its own noise and hide (or shrink) the very gap the check measures.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    >>> gap = measure_mode_gap(model, [(np.eye(2, dtype="float32"), np.array([0, 1]))])
    >>> gap.examples, gap.gap, gap.large
    (2, 0.0, False)
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from tfpilot.models.airbench_layers import FusedBatchNorm
from tfpilot.training.precise_bn import trainable_batch_norms


@dataclass(frozen=True)
class ModeGap:
    """Accuracy and loss of one model in training and in inference mode on the same examples.

    Args:
        examples: how many training examples were compared.
        training_mode_accuracy, inference_mode_accuracy: accuracy in each mode.
        training_mode_loss, inference_mode_loss: mean cross-entropy in each mode.
        threshold: the accuracy drop (training minus inference mode) that counts as large.
        batch_norm_layers: the model's trainable BatchNormalization layers.
        precise_bn: whether precise BN recomputed their statistics in this run.
        random_layers: the random layers (dropout, noise, augmentation) held in inference mode
            while the model ran in training mode (:func:`random_layers`).
    """

    examples: int
    training_mode_accuracy: float
    inference_mode_accuracy: float
    training_mode_loss: float
    inference_mode_loss: float
    threshold: float
    batch_norm_layers: int = 0
    precise_bn: bool = False
    random_layers: int = 0

    @property
    def gap(self) -> float:
        """Training-mode minus inference-mode accuracy (positive: inference is worse)."""
        return round(self.training_mode_accuracy - self.inference_mode_accuracy, 6)

    @property
    def large(self) -> bool:
        return self.gap > self.threshold

    def message(self) -> str:
        """What the gap means and what to do about it (the log's warning, the report's note)."""
        head = (f"inference mode predicts worse than training mode: on {self.examples:,} training examples the "
                f"model is {self.inference_mode_accuracy:.1%} accurate in inference mode (how the saved model "
                f"predicts) but {self.training_mode_accuracy:.1%} in training mode, a gap of "
                f"{100 * self.gap:.1f} points (threshold {100 * self.threshold:.1f}). Validation and test "
                "accuracy are those of inference mode: the training curves overstate the model. ")
        if not self.batch_norm_layers:
            return head + ("The model has no trainable BatchNormalization layer: look for a layer that behaves "
                           "differently when training (dropout and other random layers were off in both modes).")
        if not self.precise_bn:
            return head + (f"The likely cause is its {self.batch_norm_layers} BatchNormalization layer(s): their "
                           "moving statistics (momentum 0.99) had too few steps to approach the batch statistics. "
                           "Turn train.precise_bn.enabled back on (it recomputes them from training batches), or "
                           "train more steps (smaller batch_size, more epochs).")
        return head + ("Precise BN recomputed the BatchNormalization statistics, so batch statistics themselves "
                       "differ from the population's: try a larger batch_size or train.precise_bn.examples.")

    def to_dict(self) -> dict[str, Any]:
        """The record kept in metrics.json (``mode_gap``), with ``gap``, ``large`` and ``message``."""
        out: dict[str, Any] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out.update(gap=self.gap, large=self.large)
        if self.large:
            out["message"] = self.message()
        return out


def _predictions(probs: np.ndarray) -> np.ndarray:
    return (probs[:, 0] > 0.5).astype(np.int64) if probs.shape[-1] == 1 else probs.argmax(axis=-1)


def _cross_entropy(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    if probs.shape[-1] == 1:
        return -(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0]))
    return -np.log(p[np.arange(len(y)), y])


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(keras.ops.convert_to_numpy(y))
    return y.argmax(axis=-1) if y.ndim == 2 and y.shape[-1] > 1 else y.reshape(-1).astype(np.int64)


def _is_batch_norm(layer: Any) -> bool:
    return isinstance(layer, (keras.layers.BatchNormalization, FusedBatchNorm))


def _sublayers(layer: Any) -> list[Any]:
    # Keras 3's own layer walk (nested models, and layers held by custom layers).
    return list(layer._flatten_layers(include_self=True, recursive=True))


def random_layers(model: Any) -> list[Any]:
    """The layers of ``model`` that draw random numbers in training mode and hold no BatchNorm
    layer: the outermost layer around each ``keras.random.SeedGenerator`` that can be switched
    to inference mode without switching a BatchNorm layer too.

    That covers Keras' Dropout, SpatialDropout*, GaussianDropout, AlphaDropout, GaussianNoise,
    the random augmentation layers (RandomFlip, RandomRotation, ...), an LSTM/GRU with dropout
    (the RNN layer applies its cell's masks), and any custom layer drawing through a seed
    generator it owns, nested models included. A layer that draws with a fixed integer seed
    and no generator is not seen; one whose ``call`` takes no ``training`` argument is looked
    into for random layers that do.

    Args:
        model: a built Keras model.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5),
        ...                       keras.layers.GaussianNoise(0.1), keras.layers.Dense(2)])
        >>> [type(layer).__name__ for layer in random_layers(m)]
        ['Dropout', 'GaussianNoise']
    """
    found: list[Any] = []

    def visit(layer: Any) -> None:
        inside = _sublayers(layer)
        if not any(sub._seed_generators for sub in inside):
            return
        if layer._call_has_training_arg and not any(_is_batch_norm(sub) for sub in inside):
            found.append(layer)
            return
        for child in layer._flatten_layers(include_self=False, recursive=False):
            visit(child)

    for child in model._flatten_layers(include_self=False, recursive=False):
        visit(child)
    return found


@contextlib.contextmanager
def random_layers_off(model: Any) -> Iterator[list[Any]]:
    """Within the block, every layer of :func:`random_layers` runs in inference mode whatever
    mode the model is called in; on leaving it the layers are as they were (even on an error).

    The model itself is not changed: each such layer's ``call`` is shadowed by an instance
    attribute that passes ``training=False``, deleted on exit. A ``tf.function`` traced inside
    the block keeps the switched-off graph.

    Args:
        model: a built Keras model.

    Yields:
        The layers switched off.

    Example:
        >>> import keras, numpy as np
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.9)])
        >>> with random_layers_off(m):
        ...     np.asarray(m(np.ones((1, 4), "float32"), training=True)).tolist()
        [[1.0, 1.0, 1.0, 1.0]]
    """
    layers = random_layers(model)
    shadowed: list[tuple[Any, Any]] = []  # (layer, the instance's own ``call`` before, or None)
    try:
        for layer in layers:

            @functools.wraps(layer.call)
            def inference_call(*args: Any, _original: Any = layer.call, **kwargs: Any) -> Any:
                kwargs["training"] = False
                return _original(*args, **kwargs)

            shadowed.append((layer, vars(layer).get("call")))
            object.__setattr__(layer, "call", inference_call)
        yield layers
    finally:
        for layer, before in shadowed:
            if before is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", before)


def measure_mode_gap(model: Any, batches: Iterable[Any], threshold: float = 0.05, precise_bn: bool = False) -> ModeGap:
    """Compare the model in training mode and in inference mode on the same labelled batches.

    Training mode is BatchNorm's: it normalises with each batch's statistics, while the
    random layers (:func:`random_layers`: dropout, noise, augmentation) run in inference mode,
    as at prediction, so that their noise does not count as a gap. It runs as stateless calls:
    BatchNormalization's moving statistics and the model's random generators are left as
    they were, and the model is unchanged afterwards.

    Args:
        model: a classifier (softmax, or one sigmoid unit).
        batches: ``(x, y[, sample_weight])`` batches of training data at the training batch
            size (labels sparse or one-hot).
        threshold: the accuracy drop that counts as large.
        precise_bn: whether the run recomputed BatchNorm statistics (for the advice given).

    Returns:
        The :class:`ModeGap`.

    Example:
        >>> import keras, numpy as np
        >>> m = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization(),
        ...                       keras.layers.Dense(2, activation="softmax")])
        >>> measure_mode_gap(m, [(np.ones((4, 1), "float32"), np.zeros(4, "int64"))]).examples
        4
    """
    import tensorflow as tf

    @tf.function(jit_compile=False, reduce_retracing=True)
    def both_modes(trainable: Any, non_trainable: Any, x: Any) -> Any:
        train_out, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return train_out, model(x, training=False), non_trainable

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    hits, losses, n = np.zeros(2), np.zeros(2), 0
    with random_layers_off(model) as switched_off:
        for batch in batches:
            x, y = batch[0], _labels(batch[1])
            train_out, infer_out, non_trainable = both_modes(trainable, non_trainable, x)
            non_trainable = list(non_trainable)
            for i, out in enumerate((train_out, infer_out)):
                probs = np.asarray(keras.ops.convert_to_numpy(keras.tree.flatten(out)[0]), np.float64)
                hits[i] += float(np.sum(_predictions(probs) == y))
                losses[i] += float(np.sum(_cross_entropy(probs, y)))
            n += len(y)
    if n == 0:
        raise ValueError("measure_mode_gap needs at least one batch of examples")
    return ModeGap(examples=n, training_mode_accuracy=float(hits[0] / n), inference_mode_accuracy=float(hits[1] / n),
                   training_mode_loss=float(losses[0] / n), inference_mode_loss=float(losses[1] / n),
                   threshold=float(threshold), batch_norm_layers=len(trainable_batch_norms(model)),
                   precise_bn=precise_bn, random_layers=len(switched_off))
