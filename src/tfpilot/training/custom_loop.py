"""``train.loop: custom`` -- the same run through an explicit ``GradientTape`` step.

For users who need to change the step (seed 004 §4): the model, data pipeline, compiled
loss and metrics, callbacks and run directory are exactly those of ``model.fit``; only the
inner step is written out here, in one place, to be edited.
"""

from __future__ import annotations

from typing import Any


def make_train_step(model: Any, loss_tracker: Any) -> Any:
    """A ``tf.function`` running one optimisation step; returns the metric results.

    Args:
        model: the compiled model (its loss, metrics and optimizer are used).
        loss_tracker: a ``keras.metrics.Mean`` accumulating the epoch's mean loss.
    """
    import tensorflow as tf

    @tf.function
    def train_step(x: Any, y: Any, sample_weight: Any = None) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = model.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        loss_tracker.update_state(loss, sample_weight=tf.shape(y_pred)[0])
        return {**model.compute_metrics(x, y, y_pred, sample_weight=sample_weight), "loss": loss_tracker.result()}

    return train_step


def custom_fit(
    model: Any,
    train_ds: Any,
    *,
    epochs: int,
    steps_per_epoch: int,
    initial_epoch: int = 0,
    validation_data: Any = None,
    callbacks: list[Any] = (),
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

    Returns:
        The ``keras.callbacks.History`` of the run.
    """
    import keras

    history = keras.callbacks.History()
    cbs = keras.callbacks.CallbackList([*callbacks, history], add_history=False, model=model,
                                       epochs=epochs, steps=steps_per_epoch, verbose=0)
    loss_tracker = keras.metrics.Mean(name="loss")
    step = make_train_step(model, loss_tracker)
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
            logs = {k: float(v) for k, v in step(*next(iterator)).items()}
            cbs.on_train_batch_end(batch, logs)
        epoch_logs = dict(logs)
        if validation_data is not None:
            val = model.evaluate(validation_data, verbose=0, return_dict=True)
            epoch_logs.update({f"val_{k}": float(v) for k, v in val.items()})
        cbs.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_variables)  # EMA weights, as fit does
    cbs.on_train_end(logs)
    return history
