"""Losses of table-model heads: a registry (``register_loss``), the built-ins, and the
per-head loss and metrics ``model.fit`` is compiled with.

A registered loss is a factory: keyword parameters (``features.outputs[].loss_params``)
in, a function ``(y_true, y_pred) -> per-example loss`` out. Regression losses get
``(N, 1)`` float tensors -- in standardised units when the head normalises its target
(the default), so one loss weight means the same for a price in euros and a year;
classification losses get the integer labels (N,) and the softmax (N, C), or the 0/1
labels and sigmoid (N, 1) of a binary head.

Built-ins: ``crossentropy`` (classification); ``mse``, ``mae``, ``huber``, ``log_cosh``
(seed 001 §5.1's regression losses) and ``mse_mae`` (seed 001 §5.1's custom loss,
0.7 MSE + 0.3 MAE). Register your own where it is defined::

    from keras import ops
    from tfpilot.training.losses import register_loss

    @register_loss("mse_mae_08", task="regression")
    def mse_mae_08(mse_weight=0.8):
        def loss(y_true, y_pred):
            err = y_pred - y_true
            return mse_weight * ops.mean(ops.square(err), -1) + (1 - mse_weight) * ops.mean(ops.abs(err), -1)
        return loss

and name it in a config: ``features.outputs: [{name: price, loss: mse_mae_08}]``.

Example:
    >>> import numpy as np
    >>> fn = LOSSES.get("mse_mae")()
    >>> round(float(np.asarray(fn(np.zeros((2, 1), "float32"), np.full((2, 1), 2.0, "float32"))).mean()), 4)
    3.4
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from tfpilot.registry import LOSSES, serializable

LossFn = Callable[[Any, Any], Any]


def register_loss(name: str | None = None, *, task: str = "regression",
                  description: str = "") -> Callable[[Callable[..., LossFn]], Callable[..., LossFn]]:
    """Register a loss factory under ``name`` for ``task`` ("regression" or "classification")."""
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', not {task!r}")
    return LOSSES.register(name, description=description, tags=(task,))


@register_loss("crossentropy", task="classification")
def crossentropy() -> LossFn:
    """Cross-entropy: sparse categorical for a softmax head, binary for a sigmoid head."""
    def loss(y_true: Any, y_pred: Any) -> Any:
        if y_pred.shape[-1] == 1:
            return keras.losses.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred)
        return keras.losses.sparse_categorical_crossentropy(ops.reshape(y_true, (-1,)), y_pred)
    return loss


@register_loss("mse")
def mse() -> LossFn:
    """Mean squared error."""
    return keras.losses.mean_squared_error


@register_loss("mae")
def mae() -> LossFn:
    """Mean absolute error."""
    return keras.losses.mean_absolute_error


@register_loss("huber")
def huber(delta: float = 1.0) -> LossFn:
    """Huber loss: squared below ``delta``, linear above (robust to outliers)."""
    return lambda y_true, y_pred: keras.losses.huber(y_true, y_pred, delta=float(delta))


@register_loss("log_cosh")
def log_cosh() -> LossFn:
    """log(cosh(error)): like MSE for small errors, like MAE for large ones."""
    return keras.losses.log_cosh


@register_loss("mse_mae")
def mse_mae(mse_weight: float = 0.7, mae_weight: float = 0.3) -> LossFn:
    """Seed 001 §5.1's custom loss: ``mse_weight * MSE + mae_weight * MAE`` (0.7 / 0.3)."""
    def loss(y_true: Any, y_pred: Any) -> Any:
        err = y_pred - y_true
        return float(mse_weight) * ops.mean(ops.square(err), axis=-1) + float(mae_weight) * ops.mean(ops.abs(err), axis=-1)
    return loss


@serializable
class HeadLoss(keras.losses.Loss):
    """One head's registered loss, given the shapes it expects.

    Args:
        loss: the registered loss name.
        params: its keyword parameters.
        kind: the head's kind: "number", "category" or "binary".
        mean, std: number heads: targets and predictions are standardised with these first
            (0 and 1: the loss sees the column's units).
    """

    def __init__(self, loss: str, params: dict[str, Any] | None = None, kind: str = "number",
                 mean: float = 0.0, std: float = 1.0, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or loss, **kwargs)
        self.loss, self.params, self.kind = loss, dict(params or {}), kind
        self.mean, self.std = float(mean), float(std)
        self.fn = LOSSES.get(loss)(**self.params)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if self.kind == "category":
            return self.fn(y_true, y_pred)
        y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1, 1))
        y_true = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
        if self.kind == "number" and (self.mean != 0.0 or self.std != 1.0):
            y_true, y_pred = (y_true - self.mean) / self.std, (y_pred - self.mean) / self.std
        return self.fn(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction, "loss": self.loss, "params": self.params,
                "kind": self.kind, "mean": self.mean, "std": self.std}


@serializable
def absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Per-example |y_pred - y_true| of a number head (the ``mae`` metric averages it)."""
    return ops.abs(ops.reshape(ops.cast(y_pred, "float32"), (-1,)) - ops.reshape(ops.cast(y_true, "float32"), (-1,)))


def head_kinds(model: Any) -> dict[str, str]:
    """Output key -> "number" / "binary" / "category", read from a table model's layers."""
    from tfpilot.models.table_layers import TargetScaling

    kinds = {}
    for key in model.output_names:
        layer = model.get_layer(key)
        if isinstance(layer, TargetScaling):
            kinds[key] = "number"
        elif any(lyr.name == f"{key}_logit" for lyr in model.layers):
            kinds[key] = "binary"
        else:
            kinds[key] = "category"
    return kinds


def table_loss_and_metrics(features: Any, model: Any, top_k: int = 5) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The dict losses and metrics a table model is compiled with (the loss weights come
    from :func:`tfpilot.training.setup.loss_weights`).

    Args:
        features: the resolved ``features`` section (every output has its type).
        model: a :func:`~tfpilot.models.multitask.multitask` model, adapted (its number heads
            hold the training targets' mean and std).
        top_k: k of the category heads' top-k accuracy (when they have more than k classes).

    Returns:
        ``(losses, metrics)``, each keyed by output key.
    """
    from tfpilot.spec import column_key

    kinds = head_kinds(model)
    losses, metrics = {}, {}
    for out in features.outputs:
        key = column_key(out.name)
        kind = kinds[key]
        mean, std = 0.0, 1.0
        if kind == "number" and out.normalize:
            mean, std = model.get_layer(key).statistics
        losses[key] = HeadLoss(out.loss_name(kind), out.loss_params, kind, mean, std, name=f"{key}_loss")
        if kind == "number":
            metrics[key] = [keras.metrics.MeanMetricWrapper(absolute_error, name="mae"),
                            keras.metrics.RootMeanSquaredError(name="rmse")]
        elif kind == "binary":
            metrics[key] = [keras.metrics.BinaryAccuracy(name="accuracy")]
        else:
            classes = int(model.get_layer(key).units)
            metrics[key] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            if classes > top_k:
                metrics[key].append(keras.metrics.SparseTopKCategoricalAccuracy(top_k, name="top_k_accuracy"))
    return losses, metrics
