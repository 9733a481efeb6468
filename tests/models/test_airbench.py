"""The CPU-fast CIFAR net: patch whitening really whitens, the fused BatchNorm normalises and
tracks its statistics, the model round-trips through model.keras, and the trainer adapts it."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.models import create_model
from tfpilot.models.airbench import adapt_whitening, whitening_layers
from tfpilot.models.airbench_layers import FusedBatchNorm, PatchWhitening, image_patches
from tfpilot.spec import InputSpec


def _correlated_images(n: int = 64, size: int = 12, seed: int = 0) -> np.ndarray:
    """Smooth, channel-correlated float images: their raw patches are far from white."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, size + 2, size + 2, 1))
    smooth = (base[:, :-2, :-2] + base[:, 1:-1, 1:-1] + base[:, 2:, 2:]) / 3.0
    mixed = np.concatenate([smooth, 0.8 * smooth + 0.2, -smooth + 0.5], axis=-1)
    return ((mixed + 0.3 * rng.normal(size=mixed.shape)) * 40 + 120).astype("float32")  # full rank


def test_patch_whitening_whitens_the_patches_it_was_adapted_on():
    images = _correlated_images()
    raw_cov = np.cov(image_patches(images.astype("float64"), 2).T)
    assert np.abs(raw_cov - np.diag(np.diag(raw_cov))).max() > 10.0  # correlated to begin with
    layer = PatchWhitening(patch_size=2, epsilon=1e-6)
    layer.adapt(images)
    out = np.asarray(layer(images), dtype="float64")
    assert out.shape == (64, 11, 11, 24)
    half = out[..., :12].reshape(-1, 12)  # the eigen-filters; the other 12 are their negatives
    np.testing.assert_allclose(half.mean(axis=0), 0.0, atol=0.02)  # the bias centres them (units: 1 std)
    np.testing.assert_allclose(np.cov(half.T), np.eye(12), atol=0.02)
    np.testing.assert_allclose(np.asarray(layer.kernel)[..., 12:], -np.asarray(layer.kernel)[..., :12])


def test_patch_whitening_config_round_trip_and_frozen_kernel():
    layer = PatchWhitening(patch_size=3, epsilon=1e-3, trainable_bias=False, name="w")
    clone = PatchWhitening.from_config(layer.get_config())
    assert (clone.patch_size, clone.epsilon, clone.trainable_bias, clone.name) == (3, 1e-3, False, "w")
    clone.build((None, 8, 8, 3))
    assert clone.trainable_weights == []  # neither kernel nor (here) bias trains
    assert clone.compute_output_shape((None, 8, 8, 3)) == (None, 6, 6, 54)


def test_fused_batch_norm_normalises_tracks_momentum_and_matches_keras_ops_path():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, (16, 5, 5, 4)).astype("float32")
    bn = FusedBatchNorm(momentum=0.6, epsilon=1e-3)
    y = np.asarray(bn(x, training=True))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), 0.4 * x.mean(axis=(0, 1, 2)), rtol=1e-4)
    # inference mode uses the moving statistics, not the batch's
    mean, var = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
    np.testing.assert_allclose(np.asarray(bn(x, training=False)), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
    # the keras.ops path (other backends, non-4D inputs) computes the same normalisation
    flat = x.reshape(-1, 4)
    ref = FusedBatchNorm(momentum=0.6, epsilon=1e-3)
    np.testing.assert_allclose(np.asarray(ref(flat, training=True)), y.reshape(-1, 4), atol=1e-3)
    clone = FusedBatchNorm.from_config(bn.get_config())
    assert (clone.momentum, clone.epsilon, clone.center, clone.scale) == (0.6, 1e-3, True, False)


def test_airbench_adapts_trains_and_round_trips_through_model_keras(tmp_path):
    import keras

    from tfpilot.runs import load_model

    model = create_model("airbench", InputSpec.image(16, 16, 3), 4, widths=[8, 16])
    (layer,) = whitening_layers(model)
    identity = np.asarray(layer.kernel).copy()
    x = np.random.default_rng(0).integers(0, 255, (32, 16, 16, 3), dtype=np.uint8)
    assert adapt_whitening(model, x, examples=20) == 1
    assert not np.allclose(np.asarray(layer.kernel), identity)  # adapted: no longer the identity start
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.arange(32) % 4)
    path = tmp_path / "airbench.keras"
    model.save(path)
    for loaded in (load_model(path), keras.saving.load_model(path, safe_mode=True)):
        np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                                   atol=1e-6)
        np.testing.assert_array_equal(np.asarray(whitening_layers(loaded)[0].kernel), np.asarray(layer.kernel))


@pytest.mark.parametrize("whiten_bias", [True, False])
def test_whiten_bias_decides_whether_the_whitening_bias_trains(whiten_bias):
    model = create_model("airbench", InputSpec.image(16, 16, 3), 4, widths=[8], whiten_bias=whiten_bias)
    (layer,) = whitening_layers(model)
    x = np.random.default_rng(0).integers(0, 255, (32, 16, 16, 3), dtype=np.uint8)
    adapt_whitening(model, x)
    bias = np.asarray(layer.bias).copy()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, np.arange(32) % 4)
    assert [w.name for w in layer.trainable_weights] == (["bias"] if whiten_bias else [])
    assert np.array_equal(np.asarray(layer.bias), bias) is not whiten_bias  # trained, or kept as adapted


def test_airbench_needs_a_conv_group():
    with pytest.raises(ValueError, match="at least one conv group"):
        create_model("airbench", InputSpec.image(32, 32, 3), 10, widths=[])


def test_the_trainer_adapts_the_whitening_layer_on_the_training_split(tmp_path):
    from tfpilot.config import load_config
    from tfpilot.testing import make_image_folder, tiny_config
    from tfpilot.training import Trainer

    folder = make_image_folder(tmp_path / "shapes", per_class=10, size=16)
    cfg = tiny_config(folder, tmp_path / "run")
    cfg["model"] = {"name": "airbench", "params": {"widths": [8]}}
    cfg["train"]["callbacks"].update(checkpoint=False, backup=False)
    trainer = Trainer(load_config(cfg)).fit()
    kernel = np.asarray(whitening_layers(trainer.model_)[0].kernel)
    p, c = 2, 3
    identity = np.eye(p * p * c).reshape(p, p, c, -1)
    assert not np.allclose(kernel[..., : p * p * c], identity)
