"""What every training run sets up the same way: seeds, the configured model, its loss and
metrics. Shared by the :class:`~tfpilot.training.Trainer` and the LR range test.

What differs between the kinds of model lives in a *task* object, chosen once by
:func:`task_for`: :class:`ClassifierTask` (one input, one softmax/sigmoid head) here, and
:class:`~tfpilot.training.table_task.TableTask` (a table model: a features section) beside
the table code. A task prepares the data, builds and adapts the model, and names its losses.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="digits", model="mlp")  # doctest: +SKIP
    >>> model = build_model(cfg, prepare_data(cfg.data), "float32")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from tfpilot.config import Config
from tfpilot.runs import SPLIT, Run

log = logging.getLogger(__name__)


class Task(Protocol):
    """What the trainer asks of a kind of model (see :func:`task_for`)."""

    def prepare(self, config: Config, source: Run | None = None) -> tuple[Config, Any]: ...

    def create_model(self, config: Config, data: Any) -> Any: ...

    def adapt(self, model: Any, data: Any) -> None: ...

    def loss_and_metrics(self, config: Config, model: Any, num_classes: int) -> tuple[Any, Any]: ...

    def loss_weights(self, config: Config) -> dict[str, float] | None: ...

    def measures_mode_gap(self, model: Any) -> bool: ...


class ClassifierTask:
    """A single-input classifier (image or text): :class:`~tfpilot.data.PreparedData`, a zoo
    model, one loss over class labels."""

    def prepare(self, config: Config, source: Run | None = None) -> tuple[Config, Any]:
        """The config (unchanged) and its data: split afresh, or exactly as ``source`` recorded.

        Args:
            config: the run config.
            source: the run being resumed (its ``split.json`` is rebuilt); None for a new run.

        Raises:
            RecordedSplitError: a recorded example is missing, changed or relabelled.
        """
        from tfpilot.data import prepare_data

        if source is None:
            return config, prepare_data(config.data)
        return config, prepare_data(config.data, manifest=json.loads(source.file(SPLIT).read_text()))

    def create_model(self, config: Config, data: Any) -> Any:
        """The registered model of ``model.name`` for the data's input and classes.

        Args:
            config: the run config.
            data: the prepared data.
        """
        from tfpilot.models import create_model

        return create_model(config.model.name, data.input_spec, data.num_classes, **config.model.params)

    def adapt(self, model: Any, data: Any) -> None:
        """Adapt the in-model preprocessing (text vocabularies, patch whitening) on the training
        split only.

        Args:
            model: the built model.
            data: the prepared data.
        """
        from tfpilot.models.airbench import adapt_whitening
        from tfpilot.models.text_layers import adapt_preprocessing

        adapt_preprocessing(model, data.splits["train"])
        adapt_whitening(model, data.splits["train"].x)

    def loss_and_metrics(self, config: Config, model: Any, num_classes: int) -> tuple[Any, list[Any]]:
        """Binary cross-entropy for one sigmoid unit, categorical for one-hot/soft labels, else
        sparse; accuracy and top-k accuracy.

        Args:
            config: the run config.
            model: the built model.
            num_classes: classes of the data (caps k of the top-k accuracy).
        """
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

    def loss_weights(self, config: Config) -> None:
        """One loss: no weights.

        Args:
            config: the run config.
        """
        return None

    def measures_mode_gap(self, model: Any) -> bool:
        """The mode-gap check compares the accuracy of one classifier head.

        Args:
            model: the trained model.
        """
        return len(model.outputs) == 1


def task_for(config: Config) -> Task:
    """The task of ``config``: a table model when it has a features section, else a classifier.

    Args:
        config: the run config.
    """
    if config.features is not None:
        from tfpilot.training.table_task import TableTask

        return TableTask()
    return ClassifierTask()


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def build_model(config: Config, data: Any, precision: str) -> Any:
    """The configured model for ``data``: built under ``precision``, with the configured kernel
    penalties, its statistics (text vocabularies, table normalisation) adapted on the training
    split only."""
    from tfpilot.training.precision import precision_policy
    from tfpilot.training.regularization import apply_kernel_regularization

    task = task_for(config)
    with precision_policy(precision):
        model = task.create_model(config, data)
    reg = config.train.regularization
    apply_kernel_regularization(model, l1=reg.l1, l2=reg.l2)
    task.adapt(model, data)
    log.info("built %s (%s params, %s)", config.model.name, f"{model.count_params():,}", precision)
    return model


def loss_and_metrics(config: Config, model: Any, num_classes: int) -> tuple[Any, Any]:
    """The loss and metrics ``model`` is compiled with (a table model: one of each per head)."""
    return task_for(config).loss_and_metrics(config, model, num_classes)


def loss_weights(config: Config) -> dict[str, float] | None:
    """Per-head loss weights of a table model (``features.outputs[].loss_weight``); None otherwise."""
    return task_for(config).loss_weights(config)
