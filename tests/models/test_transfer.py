"""Transfer-learning models: four keras.applications backbones, weights files, fine-tuning."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from tfpilot.models import create_model
from tfpilot.models.finetune import find_backbone, freeze, trainable_layers, unfreeze
from tfpilot.models.transfer import FAMILIES, WeightsError, build_backbone
from tfpilot.models.transfer_layers import BackbonePreprocessing
from tfpilot.spec import InputSpec

GRAY28 = InputSpec.image(28, 28, 1)  # MNIST-like: resized to 32x32 and made RGB inside the model
RGB32 = InputSpec.image(32, 32, 3)
SMALL = {"mobilenet_v2": {"alpha": 0.35}}


def _images(n: int, spec: InputSpec, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *spec.shape), dtype=np.uint8)


def _bn_layers(backbone: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, list[np.ndarray]]:
    """A MobileNetV2 (alpha 0.35, 32x32) backbone with perturbed weights, saved in Keras 3's
    .weights.h5 format and in the legacy .h5 format of Keras' ImageNet files."""
    from keras.src.legacy.saving import legacy_h5_format

    bb = build_backbone("mobilenet_v2", (32, 32), None, alpha=0.35)
    rng = np.random.default_rng(1)
    bb.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in bb.get_weights()])
    # Like a pretrained network: BatchNorm statistics that fit the activations (one
    # training-mode pass with momentum 0 sets them to this batch's statistics).
    for layer in _bn_layers(bb):
        layer.momentum = 0.0
    bb(rng.uniform(-1, 1, (16, 32, 32, 3)).astype("float32"), training=True)
    d = tmp_path_factory.mktemp("weights")
    new = str(d / "backbone.weights.h5")
    bb.save_weights(new)
    legacy = str(d / "mobilenet_v2_no_top.h5")
    with h5py.File(legacy, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, bb)
    return new, legacy, bb.get_weights()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_builds_on_raw_uint8_and_round_trips_safe_mode(name, tmp_path):
    model = create_model(name, GRAY28, 3, weights="none", **SMALL.get(name, {}))
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, 28, 28, 1)
    backbone = find_backbone(model)
    assert tuple(backbone.inputs[0].shape) == (None, 32, 32, 3)  # resized, gray -> RGB, in the model
    # weights none: nothing to transfer, the whole network trains from scratch
    assert backbone.trainable and len(model.trainable_weights) > len(backbone.layers) // 2
    assert {layer.momentum for layer in _bn_layers(backbone)} <= {0.9}  # (VGG16 has no BatchNorm)
    x = _images(2, GRAY28)
    out = np.asarray(model(x, training=False))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), out, atol=1e-5)
    assert find_backbone(loaded).name == "backbone"


@pytest.mark.parametrize(("mode", "family"), [("tf", "mobilenet_v2"), ("caffe", "resnet50"), ("caffe", "vgg16")])
def test_in_model_scaling_matches_keras_preprocess_input(mode, family):
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    module = {"mobilenet_v2": keras.applications.mobilenet_v2, "resnet50": keras.applications.resnet50,
              "vgg16": keras.applications.vgg16}[family]
    assert FAMILIES[family].preprocess == mode
    expected = module.preprocess_input(x.copy())
    layer = BackbonePreprocessing(mode)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-4)
    again = BackbonePreprocessing.from_config(layer.get_config())
    assert again.mode == mode
    assert FAMILIES["efficientnet_b0"].preprocess == "none"  # EfficientNet rescales inside the backbone


def test_torch_mode_standardizes_with_imagenet_statistics():
    from keras.src.applications import imagenet_utils

    x = np.random.default_rng(1).uniform(0, 255, (1, 2, 2, 3)).astype("float32")
    expected = imagenet_utils.preprocess_input(x.copy(), mode="torch")
    np.testing.assert_allclose(np.asarray(BackbonePreprocessing("torch")(x)), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must be one of"):
        BackbonePreprocessing("bgr")


@pytest.mark.parametrize("which", [0, 1], ids=["weights.h5", "legacy.h5"])
def test_loads_a_backbone_weights_file(backbone_file, which):
    path, saved = backbone_file[which], backbone_file[2]
    model = create_model("mobilenet_v2", RGB32, 4, weights=path, alpha=0.35)
    backbone = find_backbone(model)
    assert not backbone.trainable and not backbone.trainable_weights  # pretrained: frozen for stage 1
    head = {id(w) for w in model.get_layer("predictions").trainable_weights}
    assert {id(w) for w in model.trainable_weights} == head
    got = backbone.get_weights()
    assert len(got) == len(saved)
    for a, b in zip(got, saved):
        np.testing.assert_array_equal(a, b)


def test_a_weights_file_of_another_backbone_is_a_clear_error(backbone_file, tmp_path):
    with pytest.raises(WeightsError, match=r"does not match the mobilenet_v2 backbone .*alpha=0.5"):
        create_model("mobilenet_v2", RGB32, 4, weights=backbone_file[0], alpha=0.5)
    with pytest.raises(WeightsError, match="does not match the mobilenet_v2 backbone"):
        create_model("mobilenet_v2", RGB32, 4, weights=backbone_file[1], alpha=0.5)
    with pytest.raises(WeightsError, match="no such file"):
        create_model("mobilenet_v2", RGB32, 4, weights=str(tmp_path / "missing.h5"), alpha=0.35)
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(WeightsError, match=r"ending in \.h5"):
        create_model("mobilenet_v2", RGB32, 4, weights=str(tmp_path / "weights.npz"), alpha=0.35)


def test_imagenet_offline_is_a_clear_error(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsError) as info:
        create_model("mobilenet_v2", RGB32, 4, weights="imagenet", alpha=0.35)
    msg = str(info.value)
    assert "could not get the ImageNet weights of mobilenet_v2" in msg and "Name or service not known" in msg
    assert "weights: none" in msg and "no internet" in msg
    with pytest.raises(WeightsError, match="alpha in"):
        create_model("mobilenet_v2", RGB32, 4, weights="imagenet", alpha=0.6)


def test_imagenet_loads_through_keras_own_download_path(monkeypatch, backbone_file):
    """With the ImageNet file already downloaded (Keras' cache), "imagenet" loads it."""
    from keras.src.utils import file_utils

    asked = []

    def cached(fname, origin=None, **kwargs):
        asked.append(fname)
        return backbone_file[1]  # the legacy .h5 format of the real ImageNet files

    monkeypatch.setattr(file_utils, "get_file", cached)
    model = create_model("mobilenet_v2", RGB32, 4, alpha=0.35)  # weights default: imagenet
    assert asked == ["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"]
    for a, b in zip(find_backbone(model).get_weights(), backbone_file[2]):
        np.testing.assert_array_equal(a, b)


def test_head_options_and_bad_values():
    model = create_model("mobilenet_v2", RGB32, 5, weights="none", alpha=0.35, dense_units=16, dropout=0.0,
                         pooling="max", image_size=48)
    names = [layer.name for layer in model.layers]
    assert "head_dense" in names and "head_dropout" not in names
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalMaxPooling2D)
    assert tuple(find_backbone(model).inputs[0].shape) == (None, 48, 48, 3)
    with pytest.raises(ValueError, match="has no parameter 'alpha'"):
        create_model("resnet50", RGB32, 3, weights="none", alpha=0.5)
    with pytest.raises(ValueError, match="pooling must be"):
        create_model("mobilenet_v2", RGB32, 3, weights="none", pooling="mean")
    with pytest.raises(ValueError, match="at least 32"):
        create_model("mobilenet_v2", RGB32, 3, weights="none", image_size=16)


def test_unfreeze_opens_exactly_the_top_layers_and_never_batchnorm(backbone_file):
    model = create_model("mobilenet_v2", RGB32, 3, weights=backbone_file[0], alpha=0.35, dropout=0.0)
    backbone = find_backbone(model)
    top = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)][-12:]
    expected = [layer.name for layer in top
                if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    assert len(expected) >= 3

    opened = unfreeze(model, layers=12)
    assert opened == expected == trainable_layers(model)
    assert not any(layer.trainable_weights for layer in _bn_layers(backbone))
    n_head = len(model.get_layer("predictions").trainable_weights)
    assert len(model.trainable_weights) == n_head + sum(len(backbone.get_layer(n).trainable_weights) for n in opened)

    assert unfreeze(model, from_layer="Conv_1") == ["Conv_1"]  # re-freezes what is below the cut
    everything = unfreeze(model)
    assert len(everything) > 30 and not any(layer.trainable_weights for layer in _bn_layers(backbone))
    freeze(model)
    assert trainable_layers(model) == [] and not backbone.trainable_weights


def test_unfrozen_backbone_keeps_batchnorm_in_inference_mode(backbone_file):
    model = create_model("mobilenet_v2", RGB32, 3, weights=backbone_file[0], alpha=0.35, dropout=0.0)
    unfreeze(model, layers=20)
    x, y = _images(8, RGB32), np.arange(8) % 3
    bn = _bn_layers(find_backbone(model))
    stats = [np.asarray(layer.moving_mean).copy() for layer in bn]
    # Training-mode forward pass = inference-mode pass: no batch statistics anywhere.
    np.testing.assert_allclose(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)), atol=1e-5)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = find_backbone(model).get_layer("Conv_1").get_weights()[0].copy()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(before, find_backbone(model).get_layer("Conv_1").get_weights()[0])  # it fine-tunes
    for layer, old in zip(bn, stats):
        np.testing.assert_array_equal(np.asarray(layer.moving_mean), old)  # statistics untouched


def test_unfreeze_errors_are_clear(backbone_file):
    model = create_model("mobilenet_v2", RGB32, 3, weights=backbone_file[0], alpha=0.35)
    with pytest.raises(ValueError, match="no layer 'Conv_1_bnn'.*Did you mean 'Conv_1_bn'"):
        unfreeze(model, from_layer="Conv_1_bnn")
    with pytest.raises(ValueError, match="not both"):
        unfreeze(model, layers=3, from_layer="Conv_1")
    with pytest.raises(ValueError, match="integer from 0 to"):
        unfreeze(model, layers=10_000)
    plain = create_model("mlp", RGB32, 3)
    with pytest.raises(ValueError, match="no nested backbone model named 'backbone'"):
        unfreeze(plain, layers=2)


def test_from_scratch_backbone_uses_batch_statistics_and_pretrained_can_train_whole(backbone_file):
    scratch = create_model("mobilenet_v2", RGB32, 3, weights="none", alpha=0.35, bn_momentum=0.5)
    bn = _bn_layers(find_backbone(scratch))[0]
    assert bn.momentum == 0.5
    before = np.asarray(bn.moving_mean).copy()
    scratch(_images(4, RGB32), training=True)
    assert not np.array_equal(before, np.asarray(bn.moving_mean))  # ordinary BatchNorm from scratch

    whole = create_model("mobilenet_v2", RGB32, 3, weights=backbone_file[0], alpha=0.35, freeze_backbone=False)
    backbone = find_backbone(whole)
    assert backbone.trainable_weights and not any(layer.trainable for layer in _bn_layers(backbone))


@pytest.mark.slow  # 11-45 s (MobileNetV2 graph tracing, machine load); the tests above cover each piece
def test_trains_through_the_trainer_with_a_frozen_pretrained_backbone(backbone_file, tmp_path):
    from tfpilot.config import load_config
    from tfpilot.testing import make_image_folder, tiny_config
    from tfpilot.runs import Run
    from tfpilot.training import Trainer

    folder = make_image_folder(tmp_path / "data", per_class=8, size=16)
    cfg = tiny_config(folder, tmp_path / "run", precision="float32")
    cfg["train"]["callbacks"].update(checkpoint=False, backup=False, early_stopping={"enabled": False})
    cfg["model"] = {"name": "mobilenet_v2", "params": {"weights": backbone_file[0], "alpha": 0.35}}
    trainer = Trainer(load_config(cfg)).fit()
    for a, b in zip(find_backbone(trainer.model_).get_weights(), backbone_file[2]):
        np.testing.assert_array_equal(a, b)  # stage 1 left the pretrained backbone alone
    run = Run(tmp_path / "run")
    loaded = run.load_model(safe_mode=True)
    assert loaded.inputs[0].dtype == "uint8" and tuple(loaded.inputs[0].shape) == (None, 16, 16, 3)
    from tfpilot.evaluation.predictions import predict_split

    preds = predict_split(run.path)  # the recorded accuracy is the saved model's on the recorded test split
    assert run.metrics["test"]["accuracy"] == pytest.approx(float(np.mean(preds.y_pred == preds.y_true)))


def test_unfreeze_refuses_a_backbone_trained_from_scratch():
    scratch = create_model("mobilenet_v2", RGB32, 3, weights="none", alpha=0.35)
    with pytest.raises(ValueError, match="already trains whole, from scratch"):
        unfreeze(scratch, layers=5)


def test_save_backbone_weights_starts_another_model(backbone_file, tmp_path):
    from tfpilot.models.transfer import save_backbone_weights

    model = create_model("mobilenet_v2", GRAY28, 5, weights=backbone_file[1], alpha=0.35, dense_units=8)
    path = save_backbone_weights(model, tmp_path / "reused.weights.h5")
    again = create_model("mobilenet_v2", RGB32, 2, weights=str(path), alpha=0.35)
    for a, b in zip(find_backbone(again).get_weights(), backbone_file[2]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"must end in \.weights\.h5"):
        save_backbone_weights(model, tmp_path / "reused.h5")
