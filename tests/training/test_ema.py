"""``train.optimizer.ema``: the EMA weights are the ones validated each epoch, remembered by
early stopping, restored, saved and checkpointed; training and the crash-safe backup go on
from the raw weights."""

import keras
import numpy as np
import pytest

import tfpilot.models.layers  # noqa: F401  (registers the layers saved models use)
from tfpilot.config import load_config
from tfpilot.data.pipeline import make_pipeline
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer


class Recorder(keras.callbacks.Callback):
    """At each epoch's end (a user callback runs after tfpilot's): the raw weights and the EMA."""

    def __init__(self) -> None:
        super().__init__()
        self.raw, self.ema = [], []

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        self.raw.append([keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables])
        self.ema.append([keras.ops.convert_to_numpy(v) for v in opt._model_variables_moving_average])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("ema") / "shapes", per_class=16, size=12)


def _train(folder, run_dir, loop):
    cfg = load_config(tiny_config(folder, run_dir, epochs=4, precision="float32", loop=loop,
                                  optimizer={"learning_rate": 0.02, "ema": True, "ema_momentum": 0.8}),
                      # no temperature: the saved model's val loss is then the one each epoch logged
                      overrides=["train.callbacks.early_stopping.patience=10", "train.calibration=none"])
    recorder = Recorder()
    return Trainer(cfg, callbacks=[recorder]).fit(), recorder


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_the_best_epochs_ema_weights_are_validated_restored_and_saved(folder, tmp_path, loop):
    trainer, rec = _train(folder, tmp_path / "run", loop)
    history = trainer.history_["val_loss"]
    best = int(np.argmin(history))
    assert not all(np.array_equal(r, e) for r, e in zip(rec.raw[best], rec.ema[best]))  # EMA != raw here

    saved = keras.saving.load_model(trainer.run_.model_path)
    for w, ema in zip(saved.trainable_variables, rec.ema[best]):
        np.testing.assert_array_equal(np.asarray(w), ema, err_msg=w.path)
    checkpoint = keras.saving.load_model(trainer.run_.path / "checkpoints" / "best.keras")
    for w, ema in zip(checkpoint.trainable_variables, rec.ema[best]):
        np.testing.assert_array_equal(np.asarray(w), ema, err_msg=w.path)

    # each epoch's val_loss is that of the EMA weights of that epoch
    data = trainer.data_
    val = make_pipeline(data.splits["val"], 16, training=False, **data.input_spec.decode_target())
    for epoch, ema in enumerate(rec.ema):
        for w, value in zip(saved.trainable_variables, ema):
            w.assign(value)
        loss = saved.evaluate(val, verbose=0, return_dict=True)["loss"]
        assert loss == pytest.approx(history[epoch], rel=1e-5), epoch


def test_training_and_the_backup_continue_from_the_raw_weights(folder, tmp_path):
    trainer, rec = _train(folder, tmp_path / "run", "fit")
    backup = keras.saving.load_model(trainer.run_.path / "backup" / "epoch-0004" / "model.keras")
    for w, raw in zip(backup.trainable_variables, rec.raw[-1]):
        np.testing.assert_array_equal(np.asarray(w), raw, err_msg=w.path)
    for avg, ema in zip(backup.optimizer._model_variables_moving_average, rec.ema[-1]):
        np.testing.assert_array_equal(np.asarray(avg), ema, err_msg=avg.path)


def test_without_early_stopping_the_last_ema_weights_are_saved(folder, tmp_path):
    cfg = load_config(tiny_config(folder, tmp_path / "run", epochs=3, precision="float32",
                                  optimizer={"learning_rate": 0.02, "ema": True, "ema_momentum": 0.8}),
                      overrides=["train.callbacks.early_stopping.enabled=false"])
    recorder = Recorder()
    trainer = Trainer(cfg, callbacks=[recorder]).fit()
    saved = keras.saving.load_model(trainer.run_.model_path)
    for w, ema in zip(saved.trainable_variables, recorder.ema[-1]):
        np.testing.assert_array_equal(np.asarray(w), ema, err_msg=w.path)
