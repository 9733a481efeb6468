"""The per-epoch logs tfpilot's callbacks add: the learning rate is the one the epoch's steps used."""

import csv

import keras
import numpy as np
import pytest

from tfpilot.config.schema import CallbacksConfig
from tfpilot.training.callbacks import build_callbacks


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_the_learning_rate_of_an_epoch_is_its_first_steps(tmp_path, loop):
    import tensorflow as tf

    from tfpilot.training.custom_loop import custom_fit

    keras.utils.set_random_seed(0)
    # Cosine restarts, one cycle per epoch (4 steps), each peak half the last: epoch e starts at 0.1 / 2**e.
    schedule = keras.optimizers.schedules.CosineDecayRestarts(0.1, first_decay_steps=4, m_mul=0.5)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(schedule), "sparse_categorical_crossentropy")
    x, y = np.ones((16, 3), "float32"), np.zeros(16, "int64")
    cfg = CallbacksConfig(monitor="loss", tensorboard=False, csv_logger=True, checkpoint=False, progress="none")
    callbacks, _ = build_callbacks(cfg, tmp_path, epochs=3, steps=4, has_validation=False)
    if loop == "fit":
        history = model.fit(x, y, batch_size=4, epochs=3, callbacks=callbacks, verbose=0, shuffle=False).history
    else:
        stream = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
        history = custom_fit(model, stream, epochs=3, steps_per_epoch=4, callbacks=callbacks).history
    used = [float(schedule(4 * epoch)) for epoch in range(3)]  # the rate of each epoch's first step
    np.testing.assert_allclose(history["learning_rate"], used, rtol=1e-6)
    np.testing.assert_allclose(used, [0.1, 0.05, 0.025], rtol=1e-6)  # not the next cycle's peak
    with (tmp_path / "history.csv").open() as f:
        np.testing.assert_allclose([float(row["learning_rate"]) for row in csv.DictReader(f)], used, rtol=1e-6)
