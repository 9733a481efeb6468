"""Precise BatchNorm: recompute BatchNormalization's moving statistics from training batches.

Keras keeps each BatchNormalization layer's inference-time mean and variance as an
exponential moving average of batch statistics (momentum 0.99): after ``k`` steps the
averages still hold ``0.99**k`` of their initial values (0 and 1). On a small dataset
(14 steps per epoch, 140 in ten epochs: 25% left) the inference-mode network normalises
with statistics that belong to no set of weights it ever had, and can predict one class
while the training-mode network is right two times in three.

"Precise BN" (Wu & Johnson, *Rethinking "Batch" in BatchNorm*, 2021; fvcore's
``update_bn_stats``) replaces the moving averages by the plain average of the batch
statistics of the *current* weights over a fixed sample of training batches. The batch
size is the training batch size, so each layer's variance is the per-batch variance that
the training-mode network normalised with.

Example:
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    >>> batches = [np.full((4, 2), 3.0, "float32"), np.full((4, 2), 5.0, "float32")]
    >>> recompute_batch_norm_statistics(model, batches)
    8
    >>> np.asarray(model.layers[0].moving_mean).tolist()
    [4.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import keras
import numpy as np

from tfpilot.models.airbench_layers import FusedBatchNorm


def trainable_batch_norms(model: Any) -> list[Any]:
    """The model's batch-norm layers that normalise with batch statistics in training: Keras'
    ``BatchNormalization`` and tfpilot's :class:`~tfpilot.models.airbench_layers.FusedBatchNorm`
    (the same ``momentum`` / ``moving_mean`` / ``moving_variance`` contract).

    Frozen layers (``trainable=False``: a transfer-learning backbone; Keras 3 runs them in
    inference mode) and batch-renormalisation layers (their own correction statistics) are
    left out, nested models and layers included.

    Args:
        model: a built Keras model.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
        >>> [type(layer).__name__ for layer in trainable_batch_norms(m)]
        ['BatchNormalization']
    """
    # Keras 3's own layer walk (nested models, and layers held by custom layers).
    layers = model._flatten_layers(include_self=False, recursive=True)
    return [layer for layer in layers if layer.trainable and (
        isinstance(layer, FusedBatchNorm)
        or (isinstance(layer, keras.layers.BatchNormalization) and not layer.renorm))]


def _inputs(batch: Any) -> Any:
    """The inputs of a batch: ``x`` of ``(x, y[, w])``, or the batch itself."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def recompute_batch_norm_statistics(model: Any, batches: Iterable[Any]) -> int:
    """Set every trainable BatchNormalization layer's moving mean and variance to the
    example-weighted average of its batch statistics over ``batches``.

    A one-off :class:`PreciseBatchNorm` (keep one of those to recompute repeatedly: its
    compiled step is traced once).

    Args:
        model: a built Keras model.
        batches: batches of training inputs, ``x`` or ``(x, y[, sample_weight])``, at the
            training batch size (un-augmented images: what inference sees).

    Returns:
        The number of examples the statistics were computed over (0: the model has no
        trainable BatchNormalization layer, or ``batches`` was empty; nothing changed).

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization()])
        >>> recompute_batch_norm_statistics(model, [np.array([[1.0], [3.0]], "float32")])
        2
        >>> float(model.layers[0].moving_variance[0])
        1.0
    """
    return PreciseBatchNorm(model)(batches)


class PreciseBatchNorm:
    """Recomputes a model's BatchNorm statistics from batches, as often as asked.

    Each batch goes through the model in training mode with the layers' momentum set to 0,
    as a *stateless* call: the returned moving statistics are then that batch's statistics,
    and nothing of the model changes -- not its weights, not its dropout generators' state
    (a run with precise BN trains exactly as one without it; only inference differs). The
    averages are assigned at the end, and the momenta restored. The same batches give the
    same statistics every time (dropout draws start from the model's current generator state).

    The step is a ``tf.function`` traced with momentum 0 (once per input shape) and kept:
    eager calls cost about as much as the training epoch itself on a small dataset.

    Args:
        model: a built Keras model.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
        >>> precise = PreciseBatchNorm(model)
        >>> precise([np.full((4, 2), 3.0, "float32"), np.full((4, 2), 5.0, "float32")])
        8
        >>> np.asarray(model.layers[0].moving_mean).tolist(), np.asarray(model.layers[0].moving_variance).tolist()
        ([4.0, 4.0], [0.0, 0.0])
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.norms = trainable_batch_norms(model)
        self._step: Any = None

    def _compiled_step(self) -> Any:
        if self._step is None:
            import tensorflow as tf

            model = self.model

            @tf.function(jit_compile=False, reduce_retracing=True)
            def step(trainable: Any, non_trainable: Any, x: Any) -> Any:
                return model.stateless_call(trainable, non_trainable, x, training=True)[1]

            self._step = step
        return self._step

    def __call__(self, batches: Iterable[Any]) -> int:
        """Recompute the statistics over ``batches``; returns the number of examples (0: none)."""
        model, norms = self.model, self.norms
        if not norms:
            return 0
        position = {id(v): i for i, v in enumerate(model.non_trainable_variables)}
        stats = [(position[id(bn.moving_mean)], position[id(bn.moving_variance)]) for bn in norms]
        sums = [[np.zeros(bn.moving_mean.shape, np.float64), np.zeros(bn.moving_variance.shape, np.float64)]
                for bn in norms]
        momenta = [bn.momentum for bn in norms]
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        step = self._compiled_step()
        seen = 0
        try:
            for bn in norms:
                bn.momentum = 0.0  # read when the step is traced
            for batch in batches:
                x = _inputs(batch)
                n = int(keras.ops.shape(keras.tree.flatten(x)[0])[0])
                # With momentum 0 the returned statistics are this batch's; the other returned
                # state (dropout generators) carries on to the next batch, so masks differ per batch.
                non_trainable = list(step(trainable, non_trainable, x))
                for acc, (i_mean, i_var) in zip(sums, stats):
                    acc[0] += n * np.asarray(keras.ops.convert_to_numpy(non_trainable[i_mean]), np.float64)
                    acc[1] += n * np.asarray(keras.ops.convert_to_numpy(non_trainable[i_var]), np.float64)
                seen += n
        finally:
            for bn, momentum in zip(norms, momenta):
                bn.momentum = momentum
        if seen:
            for bn, (mean, var) in zip(norms, sums):
                bn.moving_mean.assign((mean / seen).astype(bn.moving_mean.dtype))
                bn.moving_variance.assign((var / seen).astype(bn.moving_variance.dtype))
        return seen
