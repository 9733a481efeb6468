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

    with precision_policy(precision):
        model = create_model(config.model.name, data.input_spec, data.num_classes, **config.model.params)
    reg = config.train.regularization
    apply_kernel_regularization(model, l1=reg.l1, l2=reg.l2)
    adapt_preprocessing(model, data.splits["train"])  # text vocabularies: the train split only
    log.info("built %s (%s params, %s)", config.model.name, f"{model.count_params():,}", precision)
    return model


def loss_and_metrics(config: Config, model: Any, num_classes: int) -> tuple[Any, list[Any]]:
    """The loss for the task and the labels' encoding, with accuracy and top-k metrics: binary
    cross-entropy for one sigmoid unit, categorical for one-hot/soft labels, else sparse."""
    import keras

    t = config.train
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
