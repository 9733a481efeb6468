"""Precise BatchNorm: a BN model trained on little data (few steps per epoch) is as right in
inference mode as in training mode, because its moving statistics are recomputed from
training batches; and that changes inference only, never training."""

import logging

import keras
import numpy as np
import pytest

import tfpilot.models.layers  # noqa: F401  (registers the layers saved models use)
from tfpilot.config import load_config
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer


def test_statistics_are_the_average_batch_statistics_and_nothing_else_changes():
    from tfpilot.training.precise_bn import recompute_batch_norm_statistics

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    outputs = keras.layers.Dropout(0.5)(keras.layers.BatchNormalization(name="bn")(hidden))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 2.0, size=(8, 4)).astype("float32") for _ in range(4)] + \
              [rng.normal(5.0, 2.0, size=(3, 4)).astype("float32")]  # a last, smaller batch
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("dense").get_weights())
    feats = [b.astype(np.float64) @ kernel + bias for b in batches]
    sizes = np.array([len(f) for f in feats], np.float64)
    want_mean = sum(n * f.mean(axis=0) for n, f in zip(sizes, feats)) / sizes.sum()
    want_var = sum(n * f.var(axis=0) for n, f in zip(sizes, feats)) / sizes.sum()
    before = {v.path: np.array(keras.ops.convert_to_numpy(v)) for v in model.variables}

    assert recompute_batch_norm_statistics(model, batches) == 35
    bn = model.get_layer("bn")
    np.testing.assert_allclose(np.asarray(bn.moving_mean), want_mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), want_var, rtol=1e-4)
    assert bn.momentum == 0.99
    for v in model.variables:  # weights and the dropout generator's state are untouched
        if v.path not in (bn.moving_mean.path, bn.moving_variance.path):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), before[v.path], err_msg=v.path)


def test_frozen_batch_norm_layers_are_left_alone():
    from tfpilot.training.precise_bn import recompute_batch_norm_statistics, trainable_batch_norms

    model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization(name="frozen")])
    model.get_layer("frozen").trainable = False
    assert trainable_batch_norms(model) == []
    assert recompute_batch_norm_statistics(model, [np.ones((4, 2), "float32")]) == 0
    np.testing.assert_array_equal(np.asarray(model.get_layer("frozen").moving_mean), [0.0, 0.0])


# -- a BN CNN on a small image folder: 4 steps per epoch, 16 steps in all ------------------------
def _cfg(folder, run_dir, *overrides):
    return load_config(tiny_config(folder, run_dir, epochs=4, batch_size=16, precision="float32"),
                       overrides=["model={name: cifar_cnn_bn}", "train.optimizer.learning_rate=0.003",
                                  "train.callbacks.backup=false", *overrides])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("pbn") / "shapes", per_class=30, size=16)


@pytest.fixture(scope="module")
def default_run(folder, tmp_path_factory):
    return Trainer(_cfg(folder, tmp_path_factory.mktemp("pbn-runs") / "default")).fit()


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def run_without_precise_bn(folder, tmp_path_factory):
    """The run as before precise BN; ``.warnings_`` holds what the trainer warned."""
    handler, logger = _Warnings(), logging.getLogger("tfpilot.training.trainer")
    logger.addHandler(handler)
    try:
        trainer = Trainer(_cfg(folder, tmp_path_factory.mktemp("pbn-runs") / "off", "train.precise_bn.enabled=false")).fit()
    finally:
        logger.removeHandler(handler)
    trainer.warnings_ = handler.messages
    return trainer


def _accuracy_in_both_modes(model, split, batch_size=16):
    """(training-mode, inference-mode) accuracy of ``model`` on ``split``'s images, in shuffled
    batches (the split is in class order; a one-class batch has other statistics)."""
    from tfpilot.data.pipeline import make_pipeline

    shuffled = split.take(np.random.default_rng(1).permutation(len(split)))
    ds = make_pipeline(shuffled, batch_size, training=False, image_size=(16, 16), channels=3)
    hits, n = np.zeros(2), 0
    for x, y in ds:
        y = np.asarray(y)
        inference = np.asarray(model(x, training=False)).argmax(-1)
        training = np.asarray(model(x, training=True)).argmax(-1)  # batch statistics
        hits += [(training == y).sum(), (inference == y).sum()]
        n += len(y)
    return hits / n


def test_a_bn_model_trained_on_little_data_is_right_in_inference_mode(default_run):
    saved = keras.saving.load_model(default_run.run_.model_path)
    train_mode, inference_mode = _accuracy_in_both_modes(saved, default_run.data_.splits["train"])
    assert train_mode >= 0.8
    assert inference_mode >= train_mode - 0.05
    assert default_run.run_.metrics["val"]["accuracy"] >= 0.85


def test_without_precise_bn_inference_mode_is_broken_there(run_without_precise_bn):
    """The failure precise BN fixes (Keras' moving averages after 16 steps keep 85% of 0 and 1)."""
    saved = keras.saving.load_model(run_without_precise_bn.run_.model_path)
    train_mode, inference_mode = _accuracy_in_both_modes(saved, run_without_precise_bn.data_.splits["train"])
    assert train_mode - inference_mode > 0.15


def test_precise_bn_changes_inference_only(default_run, run_without_precise_bn):
    for key in ("loss", "accuracy"):  # training is step for step the same
        assert default_run.history_[key] == run_without_precise_bn.history_[key]
    assert default_run.history_["val_accuracy"] != run_without_precise_bn.history_["val_accuracy"]


def test_the_gap_is_noticed_logged_recorded_and_reported(run_without_precise_bn):
    from tfpilot.evaluation.report import report

    run = run_without_precise_bn.run_
    gap = run.metrics["mode_gap"]
    assert gap["large"] and gap["gap"] > 0.15 and gap["examples"] == len(run_without_precise_bn.data_.splits["train"])
    assert gap["gap"] == pytest.approx(gap["training_mode_accuracy"] - gap["inference_mode_accuracy"], abs=1e-5)
    assert gap["batch_norm_layers"] == 7 and not gap["precise_bn"]
    assert "train.precise_bn.enabled" in gap["message"] and "BatchNormalization" in gap["message"]
    assert [m for m in run_without_precise_bn.warnings_ if m == gap["message"]]  # the log says the same

    html = report(run, model=run_without_precise_bn.model_, data=run_without_precise_bn.data_,
                  misclassified=2, correct=2).read_text()
    assert "Training vs inference mode" in html and "warning: train/inference gap" in html
    assert "train.precise_bn.enabled back on" in html


def test_a_healthy_run_records_a_small_gap_and_no_warning(default_run):
    gap = default_run.run_.metrics["mode_gap"]
    assert not gap["large"] and "message" not in gap
    assert gap["gap"] <= 0.05 and gap["precise_bn"] and gap["batch_norm_layers"] == 7


def test_fused_batch_norm_layers_get_the_average_batch_statistics_too():
    """airbench's FusedBatchNorm (one fused kernel) follows the same contract as Keras' layer."""
    from tfpilot.models.airbench_layers import FusedBatchNorm
    from tfpilot.training.precise_bn import recompute_batch_norm_statistics, trainable_batch_norms

    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, FusedBatchNorm(momentum=0.6, name="fused")(inputs))
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(8, 4, 4, 2)).astype("float32") for _ in range(3)]
    assert [layer.name for layer in trainable_batch_norms(model)] == ["fused"]
    assert recompute_batch_norm_statistics(model, batches) == 24
    bn = model.get_layer("fused")
    pixels = [b.reshape(-1, 2).astype(np.float64) for b in batches]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), np.mean([p.mean(axis=0) for p in pixels], axis=0),
                               rtol=1e-5)
    # the fused kernel reports each batch's variance with Bessel's correction (n = 128 pixels per batch)
    np.testing.assert_allclose(np.asarray(bn.moving_variance),
                               np.mean([p.var(axis=0, ddof=1) for p in pixels], axis=0), rtol=1e-4)
    assert bn.momentum == 0.6
    bn.trainable = False
    assert trainable_batch_norms(model) == []
