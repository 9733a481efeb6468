"""``train.loop: custom`` -- the same run through an explicit ``GradientTape`` step.

For users who need to change the step (seed 004 §4): the model, data pipeline, compiled
loss and metrics, callbacks and run directory are exactly those of ``model.fit``; only the
inner step is written out here, in one place, to be edited.
"""

from __future__ import annotations

import contextlib
from typing import Any


def _unscaled(loss: Any, strategy: Any) -> Any:
    """Keras divides a replica's loss by the number of replicas (so that summed gradients
    average over the global batch); the logged loss is the per-example mean again."""
    return loss * strategy.num_replicas_in_sync if strategy is not None else loss


def _rows(y_pred: Any) -> Any:
    """The batch's examples: the leading size of the (first head's) predictions."""
    import tensorflow as tf

    return tf.shape(tf.nest.flatten(y_pred)[0])[0]


def _per_batch(step: Any, strategy: Any) -> Any:
    """``step(*batch)`` on one replica, or on every replica of ``strategy`` via ``strategy.run``."""
    if strategy is None:
        return lambda batch: step(*batch)
    return lambda batch: strategy.run(step, args=tuple(batch))


def _one_row_if_empty(rows: Any, *batch: Any) -> Any:
    """``batch`` (``x, y[, sample_weight]``), or one row of zeros of the same structure when it has
    no rows (a replica left without examples by a partial last batch)."""
    import tensorflow as tf

    def one_row(t: Any) -> Any:
        return tf.zeros(tf.concat([[1], tf.shape(t)[1:]], 0), t.dtype)

    return tf.cond(rows > 0, lambda: batch, lambda: tf.nest.map_structure(one_row, batch))


def make_train_step(model: Any, loss_tracker: Any, strategy: Any = None) -> Any:
    """A ``tf.function`` running one optimisation step; returns the metric results.

    Under a ``tf.distribute`` strategy the step runs on every replica (``strategy.run``); the
    optimizer all-reduces the gradients, and the metrics, read in cross-replica context, are
    summed over every replica of every worker -- so each worker logs the same numbers. Each
    replica's loss is weighed by its share of the global batch's rows, so the summed gradient
    is the single-process gradient of the whole batch also when the replicas hold unequal parts
    of it (the epoch's partial last batch, :func:`~tfpilot.data.pipeline.distributed_batches`);
    a replica without rows runs one row of zeros instead (BatchNorm cannot normalise zero
    rows; every replica must take part in the same collectives) with a loss weight of 0, and
    updates no metric.

    Args:
        model: the compiled model (its loss, metrics and optimizer are used).
        loss_tracker: a ``keras.metrics.Mean`` accumulating the epoch's mean loss.
        strategy: the ``tf.distribute.Strategy`` the model was built under, or None.
    """
    import tensorflow as tf

    def replica_step(x: Any, y: Any, sample_weight: Any = None) -> None:
        rows, share = _rows(x), 1.0
        if strategy is not None:  # Keras divides each replica's mean loss by the replicas: rows * replicas /
            total = tf.distribute.get_replica_context().all_reduce("sum", tf.cast(rows, tf.float32))  # global rows
            share = tf.cast(rows, tf.float32) * strategy.num_replicas_in_sync / total  # gives the batch's mean
            if sample_weight is None:
                x, y = _one_row_if_empty(rows, x, y)
            else:
                x, y, sample_weight = _one_row_if_empty(rows, x, y, sample_weight)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = model.optimizer.scale_loss(loss * tf.cast(share, loss.dtype))
        grads = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        if strategy is None or rows > 0:  # a tf.cond (autograph) under a strategy; metrics are the replica's own
            loss_tracker.update_state(_unscaled(loss, strategy), sample_weight=_rows(y_pred))
            model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    run = _per_batch(replica_step, strategy)

    @tf.function
    def train_step(batch: Any) -> dict[str, Any]:
        run(batch)
        return {**model.get_metrics_result(), "loss": loss_tracker.result()}

    return train_step


def make_test_step(model: Any, loss_tracker: Any, strategy: Any) -> Any:
    """A ``tf.function`` updating the loss and metrics on one validation batch (every replica).

    Used under a strategy, where ``model.evaluate`` cannot run (Keras 3 reduces its scalar
    logs with ``axis=0`` under MultiWorkerMirroredStrategy: keras-team/keras#20585). A replica
    left without rows at the end of the split (an empty batch) skips the step: some input
    layers (a text column's n-gram counts) cannot run on zero rows.
    """
    import tensorflow as tf

    def replica_step(x: Any, y: Any, sample_weight: Any = None) -> None:
        if _rows(x) > 0:  # a tf.cond (autograph)
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
            loss_tracker.update_state(_unscaled(loss, strategy), sample_weight=_rows(y_pred))
            model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    run = _per_batch(replica_step, strategy)

    @tf.function
    def test_step(batch: Any) -> None:
        run(batch)

    return test_step


def build_state(model: Any, strategy: Any, element_spec: Any) -> None:
    """Create the compiled loss's and metrics' variables under ``strategy``'s scope, before the
    first step: created lazily inside ``strategy.run`` they would be built in a replica context,
    which fails with several local replicas. ``model.fit`` does the same (``_symbolic_build``).

    Args:
        model: the compiled model.
        strategy: its ``tf.distribute.Strategy``.
        element_spec: the (undistributed) training dataset's ``element_spec``.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=element_spec)  # noqa: SLF001 -- Keras' own pre-build, as in fit


def _distributed_evaluate(model: Any, dataset: Any, step: Any, loss_tracker: Any, callbacks: Any) -> dict[str, float]:
    """Validation under a strategy, with the callbacks' test hooks as ``model.evaluate`` calls them."""
    model.reset_metrics()
    loss_tracker.reset_state()
    callbacks.on_test_begin()
    for batch in dataset:
        step(batch)
    logs = {k: float(v) for k, v in {**model.get_metrics_result(), "loss": loss_tracker.result()}.items()}
    callbacks.on_test_end(logs)
    return logs


def custom_fit(
    model: Any,
    train_ds: Any,
    *,
    epochs: int,
    steps_per_epoch: int,
    initial_epoch: int = 0,
    validation_data: Any = None,
    callbacks: list[Any] = (),
    strategy: Any = None,
) -> Any:
    """Train like ``model.fit`` (same callbacks and logs), with :func:`make_train_step`.

    Args:
        model: a compiled Keras model.
        train_ds: batched ``(x, y)`` or ``(x, y, sample_weight)`` covering epochs
            ``[initial_epoch, epochs)`` of ``steps_per_epoch`` batches each.
        epochs: the epoch to stop at (exclusive, like ``fit``).
        steps_per_epoch: batches per epoch.
        initial_epoch: the epoch to start at (for resumed runs).
        validation_data: batched validation dataset, evaluated after each epoch.
        callbacks: Keras callbacks, called exactly as ``fit`` calls them.
        strategy: the ``tf.distribute.Strategy`` the model was built under (``train_ds`` and
            ``validation_data`` are then distributed datasets of it), or None.

    Returns:
        The ``keras.callbacks.History`` of the run.
    """
    import keras

    history = keras.callbacks.History()
    cbs = keras.callbacks.CallbackList([*callbacks, history], add_history=False, model=model,
                                       epochs=epochs, steps=steps_per_epoch, verbose=0)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        loss_tracker = keras.metrics.Mean(name="loss")
    step = make_train_step(model, loss_tracker, strategy)
    test_step = make_test_step(model, loss_tracker, strategy) if strategy is not None else None
    iterator = iter(train_ds)
    model.stop_training = False
    cbs.on_train_begin()
    logs: dict[str, Any] = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        loss_tracker.reset_state()
        cbs.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            cbs.on_train_batch_begin(batch)
            logs = {k: float(v) for k, v in step(next(iterator)).items()}
            cbs.on_train_batch_end(batch, logs)
        epoch_logs = dict(logs)
        if validation_data is not None:
            # The callbacks see validation as in fit (on_test_begin: EMA weights, precise BN).
            if strategy is None:
                val = model.evaluate(validation_data, verbose=0, return_dict=True, callbacks=cbs)
            else:
                val = _distributed_evaluate(model, validation_data, test_step, loss_tracker, cbs)
            epoch_logs.update({f"val_{k}": float(v) for k, v in val.items()})
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_variables)  # EMA weights, as fit does
    cbs.on_train_end(logs)
    return history
