"""What every training run sets up the same way: seeds, the configured model, its loss and
metrics. Shared by the :class:`~tfpilot.training.Trainer` and the LR range test.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="digits", model="mlp")  # doctest: +SKIP
    >>> model = build_model(cfg, prepare_data(cfg.data), "float32")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

from tfpilot.config import Config

log = logging.getLogger(__name__)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_model(config: Config, data: Any, precision: str) -> Any:
    """The configured model for ``data``: built under ``precision``, with the configured kernel
    penalties, its text vocabulary (if any) adapted on the training split only."""
    from tfpilot.models import create_model
    from tfpilot.models.text_layers import adapt_preprocessing
    from tfpilot.training.precision import precision_policy
    from tfpilot.training.regularization import apply_kernel_regularization

    table = config.features is not None  # a table model: encoders per column, a head per output
    with precision_policy(precision):
        if table:
            from tfpilot.registry import MODELS

            model = MODELS.get(config.model.name)(data.input_spec, 0, encoders=data.encoders(), **config.model.params)
        else:
            model = create_model(config.model.name, data.input_spec, data.num_classes, **config.model.params)
    reg = config.train.regularization
    apply_kernel_regularization(model, l1=reg.l1, l2=reg.l2)
    if table:  # vocabularies, normalisation and target statistics: the train split only
        from tfpilot.models.multitask import adapt_table_model

        train = data.splits["train"]
        adapt_table_model(model, data.input_spec, train.inputs, train.targets, data.normalize)
    else:
        adapt_preprocessing(model, data.splits["train"])  # text vocabularies: the train split only
    log.info("built %s (%s params, %s)", config.model.name, f"{model.count_params():,}", precision)
    return model


def loss_and_metrics(config: Config, model: Any, num_classes: int) -> tuple[Any, list[Any]]:
    """The loss for the task and the labels' encoding, with accuracy and top-k metrics: binary
    cross-entropy for one sigmoid unit, categorical for one-hot/soft labels, else sparse."""
    import keras

    t = config.train
    if config.features is not None:  # a table model: one loss and metrics per head (training/losses.py)
        from tfpilot.training.losses import table_loss_and_metrics

        return table_loss_and_metrics(config.features, model, t.top_k)
    k = min(t.top_k, num_classes)
    if model.outputs[0].shape[-1] == 1:  # a single sigmoid unit (binary head)
        if config.one_hot_labels:
            raise ValueError(
                f"model {config.model.name!r} ends in one sigmoid unit: label_mode one_hot and "
                "label_smoothing need a softmax head (e.g. model.params.binary_head=false)"
            )
        return keras.losses.BinaryCrossentropy(), [keras.metrics.BinaryAccuracy(name="accuracy")]
    if config.one_hot_labels:
        return (keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
                ["accuracy", keras.metrics.TopKCategoricalAccuracy(k, name="top_k_accuracy")])
    return (keras.losses.SparseCategoricalCrossentropy(),
            ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k, name="top_k_accuracy")])


def loss_weights(config: Config) -> dict[str, float] | None:
    """Per-head loss weights of a table model (``features.outputs[].loss_weight``); None otherwise."""
    if config.features is None:
        return None
    from tfpilot.spec import column_key

    return {column_key(o.name): float(o.loss_weight) for o in config.features.outputs}
