"""What every training run sets up the same way: seeds, the configured model, its loss and
metrics. Shared by the :class:`~tfpilot.training.Trainer` and the LR range test.

One :class:`Task` trains every model over named inputs and named heads: a classifier is the
one-input, one-category-head case (:func:`tfpilot.spec.classifier_spec`). What differs
between a zoo classifier and a table model lives in the data objects
(:class:`~tfpilot.data.PreparedData`, :class:`~tfpilot.data.table.TableData`: ``model_args``,
``adapt``, ``spec``, ``targets``) and in the model registry, not here.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="digits", model="mlp")  # doctest: +SKIP
    >>> model = build_model(cfg, prepare_data(cfg.data), "float32")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tfpilot.config import Config
from tfpilot.runs import SPLIT, Run

log = logging.getLogger(__name__)


class Task:
    """What the trainer asks of a run's model: its data, model, losses and batch transforms.

    One task for every model: what differs between a classifier and a table model is in their
    data objects (:class:`~tfpilot.data.RunData`) and model builders.
    """

    def prepare(self, config: Config, source: Run | None = None) -> tuple[Config, Any]:
        """The config (a table's with its resolved ``features``; the keys left to tfpilot
        chosen from the data, :func:`~tfpilot.training.defaults.choose_defaults`) and its data:
        split afresh, or exactly as ``source`` recorded.

        Args:
            config: the run config.
            source: the run being resumed (its ``split.json`` is rebuilt); None for a new run.

        Raises:
            RecordedSplitError: a recorded example is missing, changed or relabelled.
            ValueError: a table's rows or split changed since ``source`` started.
        """
        from tfpilot.data.table import prepare_run_data
        from tfpilot.training.defaults import choose_before_loading, choose_defaults

        manifest = None if source is None else json.loads(source.file(SPLIT).read_text())
        config = choose_before_loading(config)  # image size and model from image headers; the memory plan
        data = prepare_run_data(config, manifest)
        if manifest is None:  # a new split: exact copies across splits (data.dedupe)
            from tfpilot.data.inspect.train_checks import check_splits

            data = check_splits(data, config.data.dedupe)
        return choose_defaults(config, data)

    def create_model(self, config: Config, data: Any) -> Any:
        """The registered model of ``model.name`` for the data's named inputs and heads.

        Args:
            config: the run config.
            data: the prepared data.
        """
        from tfpilot.models import create_model

        return create_model(config.model.name, **data.model_args(), **config.model.params)

    def adapt(self, model: Any, data: Any) -> None:
        """Learn the model's statistics (vocabularies, whitening, normalisation) from the training
        split only.

        Args:
            model: the built model.
            data: the prepared data.
        """
        from tfpilot.models.ydf_layers import forest_heads

        if not forest_heads(model):  # decision forests learn everything in their own fit (ydf_fit)
            data.adapt(model)

    def loss_and_metrics(self, config: Config, model: Any, num_classes: int) -> tuple[Any, Any]:
        """A loss and metrics per head (a classifier's one head: unwrapped).

        Args:
            config: the run config.
            model: the built (and adapted) model.
            num_classes: classes of a classifier (caps k of the top-k accuracy).
        """
        from tfpilot.training.losses import loss_and_metrics

        return loss_and_metrics(config, model, num_classes)

    def loss_weights(self, config: Config) -> dict[str, float] | None:
        """Head key -> ``features.outputs[].loss_weight``; None for a classifier's one loss.

        Args:
            config: the run config.
        """
        from tfpilot.spec import column_key

        if config.features is None:
            return None
        return {column_key(o.name): float(o.loss_weight) for o in config.features.outputs}

    def batch_maps(self, config: Config, data: Any) -> list[Any]:
        """The training stream's transforms: augmentation of every image input (``data.augment``)
        and the class head's weights as sample weights (``train.class_weight``), each only when
        it applies.

        Args:
            config: the run config.
            data: the prepared data.
        """
        from tfpilot.training.augment import augment_map
        from tfpilot.training.imbalance import sample_weight_map

        maps = [augment_map(config.data.augment, data.spec, config.train.seed),
                sample_weight_map(config.train, data)]
        return [m for m in maps if m is not None]

    def measures_mode_gap(self, model: Any) -> bool:
        """The mode-gap check compares the accuracy of one classifier head.

        Args:
            model: the trained model.
        """
        return len(model.outputs) == 1 and not isinstance(model.output, dict)


def task_for(config: Config) -> Task:
    """The task of ``config`` (one for every model).

    Args:
        config: the run config.
    """
    return Task()


#: TF's global seed for a ``train.seed`` whose 31-bit residue is 0 (see :func:`seed_everything`).
ZERO_SEED_STAND_IN = 2**31 - 2


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic.

    TensorFlow's global seed is ``seed``, except where its 31-bit residue is 0 (``seed`` 0):
    ``tf.random.get_seed`` then compares the pipeline's per-epoch shuffle seed, a tensor, with
    0 in Python, which fails inside ``tf.data``'s graph functions. Such a seed gets
    :data:`ZERO_SEED_STAND_IN` as TF's global seed instead (Python, NumPy and Keras keep ``seed``).

    Args:
        seed: ``train.seed``.
        deterministic: also enable TF's op determinism.

    Example:
        >>> seed_everything(0, deterministic=False)  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if seed % (2**31 - 1) == 0:
        tf.random.set_seed(ZERO_SEED_STAND_IN)
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
