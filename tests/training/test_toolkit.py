"""Augmentation, class weights, balanced sampling, regularisation, accumulation, EMA,
the custom loop and the determinism check -- each a config switch on the one fit path."""

import numpy as np
import pytest
import tensorflow as tf

from tfpilot.config import load_config
from tfpilot.config.schema import AugmentConfig
from tfpilot.data.pipeline import make_train_pipeline
from tfpilot.data.source import Split
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training import Trainer
from tfpilot.training.augment import build_augmenter
from tfpilot.training.imbalance import class_weights, with_sample_weights


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("tk") / "shapes", per_class=16, size=12)


def _fit(folder, tmp_path, *overrides, **train):
    cfg = load_config(tiny_config(folder, tmp_path / "run", **train), overrides=list(overrides))
    return Trainer(cfg).fit()


@pytest.fixture
def fit_streams(monkeypatch):
    """The training datasets ``Trainer.fit`` hands to ``model.fit``, kept for inspection."""
    streams = []
    original = Trainer._train_stream

    def spy(self, data, start, end):
        streams.append(original(self, data, start, end))
        return streams[-1]

    monkeypatch.setattr(Trainer, "_train_stream", spy)
    return streams


def _all_layers(layer):
    """``layer`` and every layer nested in it (sub-models, wrappers)."""
    yield layer
    for sub in getattr(layer, "layers", []):
        yield from _all_layers(sub)


RANDOM_LAYERS = ("MixUp", "CutMix", "RandAugment", "Augmenter")


def test_augmentation_runs_in_the_pipeline_and_never_in_the_model(folder, tmp_path, fit_streams):
    import keras

    t = _fit(folder, tmp_path, "data.augment.flip=horizontal", "data.augment.rotation=0.1",
             "data.augment.zoom=0.1", "data.augment.contrast=0.2", "data.augment.mixup=0.2")
    # the batches model.fit trained on, against the same seeded batches without augmentation
    plain = Trainer(load_config(tiny_config(folder, tmp_path / "plain", label_mode="one_hot")))
    trained_on = list(fit_streams[0])
    raw = list(plain._train_stream(t.data_, 0, 1))
    assert len(trained_on) == len(raw) > 0
    changed_pixels = mixed_labels = 0
    for (ax, ay), (rx, ry) in zip(trained_on, raw):
        assert ax.dtype == rx.dtype == tf.uint8 and ax.shape == rx.shape and ay.shape == ry.shape
        changed_pixels += int(np.sum(ax.numpy() != rx.numpy()))
        mixed_labels += int(np.sum((ay.numpy() > 0) & (ay.numpy() < 1)))  # MixUp's soft labels
        np.testing.assert_allclose(ay.numpy().sum(axis=1), 1.0, atol=1e-5)
    assert changed_pixels > 0.2 * sum(int(np.prod(x.shape)) for x, _ in raw)
    assert mixed_labels > 0 and set(np.unique(np.concatenate([y.numpy() for _, y in raw]))) == {0.0, 1.0}
    # ...and never in the model: not the trained one, not the saved one
    for model in (t.model_, keras.saving.load_model(t.run_.model_path)):
        names = [type(layer).__name__ for layer in _all_layers(model)]
        assert len(names) > 3 and not any(n.startswith("Random") or n in RANDOM_LAYERS for n in names), names


def test_augmenter_changes_pixels_keeps_uint8_and_mixes_labels():
    aug = build_augmenter(AugmentConfig(flip="horizontal", brightness=0.3, mixup=0.4), channels=1, seed=0)
    x = tf.constant(np.tile(np.arange(8, dtype=np.uint8)[None, None, :, None] * 30, (6, 8, 1, 1)))
    y = tf.one_hot([0, 1, 2, 0, 1, 2], 3)
    ax, ay = aug(x, y)
    assert ax.dtype == tf.uint8 and ax.shape == x.shape
    assert not np.array_equal(ax.numpy(), x.numpy())
    np.testing.assert_allclose(ay.numpy().sum(axis=1), 1.0, atol=1e-5)
    assert np.any((ay.numpy() > 0) & (ay.numpy() < 1))  # soft labels
    assert build_augmenter(AugmentConfig(), channels=3) is None
    with pytest.raises(ValueError, match="randaugment needs RGB"):
        build_augmenter(AugmentConfig(randaugment=True), channels=1)


def test_class_weights_auto_and_by_name():
    y = np.array([0] * 90 + [1] * 10)
    auto = class_weights("auto", y, ["a", "b"])
    assert auto[1] / auto[0] == pytest.approx(9.0)
    assert np.mean(np.array(auto)[y]) == pytest.approx(1.0)
    assert class_weights({"b": 3}, y, ["a", "b"]) == [1.0, 3.0]
    with pytest.raises(ValueError, match="does not have. Did you mean 'b'"):
        class_weights({"bb": 3}, y, ["a", "b"])


def test_class_weights_really_change_the_loss():
    """The same batch and model: the weighted loss differs exactly as the weights say."""
    import keras

    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    plain = model.evaluate(ds, verbose=0)
    weighted = model.evaluate(with_sample_weights(ds, [1.0, 5.0]), verbose=0)
    per_example = keras.losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0)).numpy()
    w = np.where(y == 1, 5.0, 1.0)
    assert plain == pytest.approx(per_example.mean(), rel=1e-4)
    assert weighted == pytest.approx((per_example * w).sum() / len(y), rel=1e-4)
    assert weighted != pytest.approx(plain)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    """Shapes with 24 circles, 6 squares and 24 triangles."""
    root = make_image_folder(tmp_path_factory.mktemp("imbalanced") / "shapes", per_class=24, size=12)
    for p in sorted((root / "square").glob("*.png"))[6:]:
        p.unlink()
    return root


def _weights_fit_trained_with(stream):
    """(labels, sample weights) of every batch ``model.fit`` got; fails unless each batch has weights."""
    batches = list(stream)
    assert batches and all(len(b) == 3 for b in batches), "the batches carry no sample weights"
    return (np.concatenate([b[1].numpy() for b in batches]), np.concatenate([b[2].numpy() for b in batches]))


def test_class_weight_reaches_training(folder, imbalanced, tmp_path, fit_streams):
    t = _fit(imbalanced, tmp_path / "auto", "train.class_weight=auto")
    y_train = t.data_.splits["train"].y
    counts = np.bincount(y_train, minlength=3)
    assert counts[1] * 2 < counts[0]  # squares are the minority of the training split
    balanced = len(y_train) / (3 * counts)  # inverse class frequency, mean weight 1 over examples
    y, w = _weights_fit_trained_with(fit_streams[0])
    assert set(y.tolist()) == {0, 1, 2}
    np.testing.assert_allclose(w, balanced[y], rtol=1e-6)
    assert w[y == 1].min() > 2 * w[y == 0].max()

    _fit(folder, tmp_path / "named", "train.class_weight={circle: 5.0}")
    y, w = _weights_fit_trained_with(fit_streams[1])
    np.testing.assert_array_equal(w, np.where(y == 0, 5.0, 1.0))
    assert (y == 0).any() and (y != 0).any()


def test_balanced_sampling_draws_classes_evenly():
    y = np.array([0] * 95 + [1] * 5)
    split = Split(y=y, x=np.zeros((100, 1, 1, 1), np.uint8))
    ds = make_train_pipeline(split, 50, (0, 10), seed=1, balanced=True)
    labels = np.concatenate([b[1].numpy() for b in ds])
    assert len(labels) == 1000
    assert 0.4 < labels.mean() < 0.6  # ~half class 1 although it is 5% of the data


def test_epoch_order_depends_only_on_seed_and_epoch():
    split = Split(y=np.arange(20) % 2, x=np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1))
    full = [b[0].numpy().ravel().tolist() for b in make_train_pipeline(split, 10, (0, 3), seed=3)]
    tail = [b[0].numpy().ravel().tolist() for b in make_train_pipeline(split, 10, (2, 3), seed=3)]
    assert full[4:] == tail  # epoch 2 alone == epoch 2 of the whole run
    assert full[0:2] != full[2:4]  # and epochs differ from each other


def test_regularization_accumulation_and_ema(folder, tmp_path):
    t = _fit(folder, tmp_path, "train.regularization.l2=0.01", "train.optimizer.gradient_accumulation_steps=2",
             "train.optimizer.ema=true")
    dense = [layer for layer in t.model_.layers if type(layer).__name__ == "Dense"]
    assert all(layer.kernel_regularizer is not None for layer in dense)
    assert len(t.model_.losses) == len(dense)  # the penalties enter the loss
    opt = t.model_.optimizer
    assert opt.gradient_accumulation_steps == 2 and opt.use_ema


def test_custom_loop_shares_the_run_directory_and_callbacks(folder, tmp_path):
    t = _fit(folder, tmp_path, "train.loop=custom", epochs=2)
    run = t.run_
    assert [int(r["epoch"]) for r in run.history] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "learning_rate"} <= set(run.history[0])
    assert run.metrics["epochs_run"] == 2 and (run.path / "backup" / "latest.json").is_file()
    assert t.history_["loss"][-1] < t.history_["loss"][0] * 1.5


def test_check_determinism_reports_identical_twins(folder, tmp_path):
    from tfpilot.training.determinism import check_determinism

    cfg = load_config(tiny_config(folder, tmp_path / "x"), overrides=["model.params={hidden_units: [16], dropout: 0.2}"])
    report = check_determinism(cfg, steps=5, workdir=tmp_path)
    assert report.identical, report.differing
    assert report.num_weights >= 4


def test_learning_rate_auto_runs_the_range_test_first(folder, tmp_path):
    t = _fit(folder, tmp_path, "train.optimizer.learning_rate=auto")
    found = t.run_.metrics["learning_rate_found"]
    assert 1e-7 <= found <= 10
    assert (t.run_.path / "lr_find.png").is_file()
    assert t.run_.history[0]["learning_rate"] == pytest.approx(found, rel=1e-3)


def test_seed_zero_shuffles_like_any_other_seed():
    from tfpilot.training.setup import seed_everything

    split = Split(y=np.arange(20) % 2, x=np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1))
    seed_everything(0, deterministic=False)  # TF's global seed 0 once failed tf.data's (0, 0) check in graph mode
    for balanced in (False, True):
        epochs = [sorted(b[0].numpy().ravel().tolist()) for b in
                  make_train_pipeline(split, 20, (0, 2), seed=0, balanced=balanced)]
        assert len(epochs) == 2 and all(len(e) == 20 for e in epochs)
    plain = [b[0].numpy().ravel().tolist() for b in make_train_pipeline(split, 20, (0, 2), seed=0)]
    assert sorted(plain[0]) == list(range(20)) and plain[0] != plain[1]
