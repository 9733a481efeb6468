"""One criterion for the best epoch: early stopping (the weights it restores, so model.keras)
and the best-model checkpoint (checkpoints/best.keras) use ``train.callbacks.monitor``."""

import keras
import numpy as np
import pytest

import tfpilot.models.layers  # noqa: F401  (registers the layers saved models use)
from tfpilot.config import ConfigError, load_config
from tfpilot.config.schema import CallbacksConfig
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer
from tfpilot.training.callbacks import build_callbacks

# Per epoch: val_loss is best at epoch 1, val_accuracy at epoch 2.
VAL_LOSS = [1.0, 0.5, 0.6, 0.7]
VAL_ACCURACY = [0.5, 0.6, 0.9, 0.8]


def _drive(cfg: CallbacksConfig, run_dir) -> keras.Model:
    """Four epochs through the run's callbacks; in epoch k every weight of the model equals k."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    model.evaluate(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)  # builds the metrics, as a fit would
    callbacks, _ = build_callbacks(cfg, run_dir, epochs=4, steps=1, has_validation=True)
    cbs = keras.callbacks.CallbackList(callbacks, model=model, epochs=4, steps=1)
    cbs.on_train_begin()
    for epoch, (loss, acc) in enumerate(zip(VAL_LOSS, VAL_ACCURACY)):
        cbs.on_epoch_begin(epoch)
        model.set_weights([np.full(w.shape, float(epoch), "float32") for w in model.get_weights()])
        cbs.on_epoch_end(epoch, {"loss": 0.1, "accuracy": 0.9, "val_loss": loss, "val_accuracy": acc})
    cbs.on_train_end()
    return model


def _epoch_of(model: keras.Model) -> float:
    values = {float(v) for w in model.get_weights() for v in np.ravel(w)}
    assert len(values) == 1, values
    return values.pop()


@pytest.mark.parametrize(("criterion", "best"), [({}, 1.0), ({"monitor": "val_accuracy"}, 2.0)],
                         ids=["default", "val_accuracy"])
def test_checkpoint_and_restored_weights_come_from_the_same_epoch(tmp_path, criterion, best):
    cfg = CallbacksConfig.model_validate({**criterion, "tensorboard": False, "csv_logger": False,
                                          "progress": "none", "early_stopping": {"patience": 10}})
    restored = _drive(cfg, tmp_path)
    checkpoint = keras.saving.load_model(tmp_path / "checkpoints" / "best.keras")
    assert _epoch_of(restored) == best  # early stopping's restore_best_weights
    assert _epoch_of(checkpoint) == best  # checkpoints/best.keras


def test_the_default_criterion_is_val_loss_for_both():
    cfg = load_config(None)
    assert cfg.train.callbacks.monitor == "val_loss" and cfg.train.callbacks.monitor_mode == "min"


def test_mode_follows_the_metric_or_the_config():
    assert CallbacksConfig(monitor="val_accuracy").monitor_mode == "max"
    assert CallbacksConfig(monitor="val_top_k_accuracy").monitor_mode == "max"
    assert CallbacksConfig(monitor="val_accuracy", mode="min").monitor_mode == "min"


def test_early_stopping_monitor_of_older_configs_sets_the_one_criterion():
    cfg = load_config(None, overrides=["train.callbacks.early_stopping.monitor=val_accuracy"])
    assert cfg.train.callbacks.monitor == "val_accuracy"
    dumped = cfg.model_dump()["train"]["callbacks"]
    assert "monitor" not in dumped["early_stopping"] and dumped["monitor"] == "val_accuracy"
    same = load_config(None, overrides=["train.callbacks.monitor=val_accuracy",
                                        "train.callbacks.early_stopping.monitor=val_accuracy"])
    assert same.train.callbacks.monitor == "val_accuracy"


def test_two_different_criteria_are_refused():
    with pytest.raises(ConfigError, match="one criterion"):
        load_config(None, overrides=["train.callbacks.monitor=val_accuracy",
                                     "train.callbacks.early_stopping.monitor=val_loss"])


def test_a_real_run_keeps_the_same_model_twice(tmp_path):
    folder = make_image_folder(tmp_path / "shapes", per_class=16, size=12)
    cfg = load_config(tiny_config(folder, tmp_path / "run", epochs=4, precision="float32",
                                  optimizer={"learning_rate": 0.02}))
    run = Trainer(cfg).fit().run_
    final = keras.saving.load_model(run.model_path)
    best = keras.saving.load_model(run.path / "checkpoints" / "best.keras")
    for a, b in zip(final.weights, best.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
