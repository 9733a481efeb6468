"""Losses of model heads: a registry (``register_loss``), the built-ins, and the per-head
loss and metrics ``model.fit`` is compiled with (:func:`loss_and_metrics`).

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

from tfpilot.errors import UserError
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
    """Cross-entropy: sparse categorical for a softmax head (categorical for one-hot or soft
    labels), binary for a sigmoid head."""
    def loss(y_true: Any, y_pred: Any) -> Any:
        if y_pred.shape[-1] == 1:
            return keras.losses.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred)
        if len(y_true.shape) == 2 and y_true.shape[-1] == y_pred.shape[-1]:
            return keras.losses.categorical_crossentropy(y_true, y_pred)
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
        one_hot: category heads: the loss gets one-hot labels (``train.label_mode: one_hot``),
            smoothed by ``label_smoothing`` (``train.label_smoothing``).
    """

    def __init__(self, loss: str, params: dict[str, Any] | None = None, kind: str = "number",
                 mean: float = 0.0, std: float = 1.0, name: str | None = None, one_hot: bool = False,
                 label_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(name=name or loss, **kwargs)
        self.loss, self.params, self.kind = loss, dict(params or {}), kind
        self.mean, self.std = float(mean), float(std)
        self.one_hot, self.label_smoothing = bool(one_hot), float(label_smoothing)
        self.fn = LOSSES.get(loss)(**self.params)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        if self.kind == "category":
            if self.one_hot:
                classes = y_pred.shape[-1]
                y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes, dtype=y_pred.dtype)
                y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes
            return self.fn(y_true, y_pred)
        y_pred = ops.reshape(ops.cast(y_pred, "float32"), (-1, 1))
        y_true = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
        if self.kind == "number" and (self.mean != 0.0 or self.std != 1.0):
            y_true, y_pred = (y_true - self.mean) / self.std, (y_pred - self.mean) / self.std
        return self.fn(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction, "loss": self.loss, "params": self.params,
                "kind": self.kind, "mean": self.mean, "std": self.std, "one_hot": self.one_hot,
                "label_smoothing": self.label_smoothing}


@serializable
def absolute_error(y_true: Any, y_pred: Any) -> Any:
    """Per-example |y_pred - y_true| of a number head (the ``mae`` metric averages it)."""
    return ops.abs(ops.reshape(ops.cast(y_pred, "float32"), (-1,)) - ops.reshape(ops.cast(y_true, "float32"), (-1,)))


def loss_and_metrics(config: Any, model: Any, num_classes: int) -> tuple[Any, Any]:
    """The loss(es) and metrics ``model`` is compiled with: per head, keyed by output key (the
    loss weights come from :func:`tfpilot.training.setup.loss_weights`); a classifier's one
    head unwrapped (:func:`classifier_loss_and_metrics`).

    Args:
        config: the run config (a table's ``features`` resolved: every output has its type).
        model: the built model, adapted (a table's number heads hold the training targets'
            mean and std).
        num_classes: a classifier's classes (caps k of its top-k accuracy).

    Raises:
        ValueError: ``train.label_smoothing`` / ``label_mode: one_hot`` without a category head
            to apply to (the message names the heads).
    """
    if config.features is None:
        return classifier_loss_and_metrics(config, model, num_classes)
    from tfpilot.spec import FeatureSpec, TableSpec

    spec = TableSpec((), tuple(FeatureSpec(o.name, o.type) for o in config.features.outputs))
    one_hot, losses, metrics = _one_hot_heads(config.train, spec), {}, {}
    for head, out in zip(spec.outputs, config.features.outputs):
        key, kind, smooth = head.key, head.kind, head.key in one_hot
        mean, std = model.get_layer(key).statistics if kind == "number" and out.normalize else (0.0, 1.0)
        losses[key] = HeadLoss(out.loss_name(kind), out.loss_params, kind, mean, std, name=f"{key}_loss",
                               one_hot=smooth, label_smoothing=config.train.label_smoothing if smooth else 0.0)
        metrics[key] = _head_metrics(kind, int(model.get_layer(key).units) if kind == "category" else 1,
                                     config.train.top_k)
    return losses, metrics


def _one_hot_heads(train: Any, spec: Any) -> set[str]:
    """Keys of the category heads whose loss takes one-hot (smoothed) labels: every category
    head, or ``train.class_head``; none unless ``label_mode: one_hot`` or ``label_smoothing``."""
    from tfpilot.data.registry import class_head

    if train.label_mode != "one_hot" and not train.label_smoothing:
        return set()
    option = "train.label_smoothing" if train.label_smoothing else "train.label_mode=one_hot"
    heads = [class_head(spec, train.class_head, option)] if train.class_head else spec.outputs
    keys = {o.key for o in heads if o.kind == "category"}
    if not keys:
        names = ", ".join(f"{o.name!r} ({o.kind})" for o in heads)
        raise UserError(f"{option} applies to category (softmax) heads, not to {names}: remove it, or "
                        "declare a two-class target type category")
    return keys


def _head_metrics(kind: str, classes: int, top_k: int) -> list[Any]:
    """A table head's metrics: MAE and RMSE; accuracy (and top-k accuracy above k classes)."""
    if kind == "number":
        return [keras.metrics.MeanMetricWrapper(absolute_error, name="mae"),
                keras.metrics.RootMeanSquaredError(name="rmse")]
    if kind == "binary":
        return [keras.metrics.BinaryAccuracy(name="accuracy")]
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if classes > top_k:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(top_k, name="top_k_accuracy"))
    return metrics


def classifier_loss_and_metrics(config: Any, model: Any, num_classes: int) -> tuple[Any, list[Any]]:
    """A classifier's one head: binary cross-entropy for one sigmoid unit, categorical for
    one-hot/soft labels (made by the pipeline), else sparse; accuracy and top-k accuracy.

    Args:
        config: the run config.
        model: the built model.
        num_classes: classes of the data (caps k of the top-k accuracy).
    """
    t = config.train
    k = min(t.top_k, num_classes)
    if model.outputs[0].shape[-1] == 1:  # a single sigmoid unit (binary head)
        if config.one_hot_labels:
            raise UserError(
                f"model {config.model.name!r} ends in one sigmoid unit: label_mode one_hot and "
                "label_smoothing need a softmax head (e.g. model.params.binary_head=false)"
            )
        return keras.losses.BinaryCrossentropy(), [keras.metrics.BinaryAccuracy(name="accuracy")]
    if config.one_hot_labels:
        return (keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
                ["accuracy", keras.metrics.TopKCategoricalAccuracy(k, name="top_k_accuracy")])
    return (keras.losses.SparseCategoricalCrossentropy(),
            ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k, name="top_k_accuracy")])
