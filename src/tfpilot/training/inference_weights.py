"""The weights each epoch is judged by: the ones a run would keep.

With ``train.optimizer.ema`` the optimizer keeps an exponential moving average of the
weights, and those are the weights evaluated and saved. So they are also the weights that
must be validated each epoch and that early stopping and the best-model checkpoint must
remember -- otherwise early stopping's ``restore_best_weights`` puts the raw weights of the
best epoch back after Keras copied the EMA weights in, and the EMA is silently lost.
(Keras' own :class:`keras.callbacks.SwapEMAWeights` swaps for validation only.) With
``train.precise_bn`` the BatchNorm statistics are recomputed for those weights before they
are validated, so every remembered epoch carries statistics that match its weights.

Two callbacks bracket the others:

* :class:`InferenceWeights` (first): before validation -- or at the epoch's end when there
  is none -- swaps the EMA weights into the model and recomputes the BatchNorm statistics;
* :class:`TrainingWeights` (last of tfpilot's, before the crash-safe backup): swaps the
  training weights back, so training and the backup continue from the raw weights with the
  optimizer's average intact.

Example:
    >>> import keras
    >>> enter = InferenceWeights(ema=True)
    >>> callbacks = [enter, keras.callbacks.EarlyStopping(), TrainingWeights(enter)]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import keras

from tfpilot.training.precise_bn import PreciseBatchNorm


def ema_optimizer(model: Any) -> Any:
    """The model's optimizer if it keeps EMA weights (unwrapping a loss-scale optimizer), else None.

    Args:
        model: a compiled Keras model.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> m.compile(keras.optimizers.SGD(use_ema=True), "mse")
        >>> ema_optimizer(m) is m.optimizer
        True
    """
    opt = getattr(model, "optimizer", None)
    opt = getattr(opt, "inner_optimizer", opt)
    return opt if getattr(opt, "use_ema", False) else None


def swap_ema_weights(optimizer: Any) -> bool:
    """Exchange the values of the model's trainable variables and the optimizer's averages.

    Swapping twice restores both exactly (values are copied, not recomputed).

    Args:
        optimizer: an optimizer with ``use_ema=True``.

    Returns:
        False when the averages do not exist yet (no step was taken); nothing changed.

    Example:
        >>> import keras, numpy as np
        >>> m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
        >>> m.compile(keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.5), "mse")
        >>> _ = m.fit(np.ones((1, 1)), np.zeros((1, 1)), epochs=2, verbose=0)
        >>> raw = np.asarray(m.optimizer._model_variables_moving_average[0]).copy()
        >>> swap_ema_weights(m.optimizer)
        True
        >>> bool(np.array_equal(np.asarray(m.layers[0].kernel), raw))
        True
    """
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not averages:
        return False
    for var, average in zip(optimizer._trainable_variables, averages):
        if average is None:
            continue
        held = keras.ops.convert_to_numpy(var)
        var.assign(average)
        average.assign(held)
    return True


class InferenceWeights(keras.callbacks.Callback):
    """Before each epoch's validation (or at its end, without validation): EMA weights in,
    BatchNorm statistics recomputed. Put it first, and :class:`TrainingWeights` after the
    callbacks that must see these weights.

    Args:
        ema: swap in the optimizer's EMA weights (``train.optimizer.ema``).
        precise_batches: batches of training inputs for precise BN, or None for none.
            Iterated once per epoch; it must give the same batches every time (a fixed sample).

    Attributes:
        precise_examples: examples the last BatchNorm recomputation used (0: none).
    """

    def __init__(self, ema: bool = False, precise_batches: Any = None) -> None:
        super().__init__()
        self.ema = ema
        self.precise_batches = precise_batches
        self.precise_examples = 0
        self.swapped = False
        self._pending = False
        self._precise: PreciseBatchNorm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._pending = True

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._pending:  # validation inside fit (a stand-alone evaluate is left alone)
            self._enter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._pending:  # no validation this epoch
            self._enter()

    def _enter(self) -> None:
        self._pending = False
        optimizer = ema_optimizer(self.model) if self.ema else None
        if optimizer is not None:
            self.swapped = swap_ema_weights(optimizer)
        if self.precise_batches is not None:
            if self._precise is None or self._precise.model is not self.model:
                self._precise = PreciseBatchNorm(self.model)  # its compiled step is kept for the run
            self.precise_examples = self._precise(self.precise_batches)

    def leave(self) -> None:
        """Put the training weights back (the averages back into the optimizer)."""
        if self.swapped:
            swap_ema_weights(ema_optimizer(self.model))
            self.swapped = False


class TrainingWeights(keras.callbacks.Callback):
    """At each epoch's end, after the callbacks that judged the EMA weights: the training
    weights back into the model (see :class:`InferenceWeights`).

    Args:
        inference: the run's :class:`InferenceWeights`.
    """

    def __init__(self, inference: InferenceWeights) -> None:
        super().__init__()
        self.inference = inference

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.inference.leave()
