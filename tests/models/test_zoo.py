import numpy as np
import pytest

from tfpilot.models import create_model, list_models
from tfpilot.spec import InputSpec

# Transfer-learning models default to ImageNet weights (a download): tests/models/test_transfer.py covers them.
TRANSFER_MODELS = ("mobilenet_v2", "efficientnet_b0", "resnet50", "vgg16")
IMAGE_MODELS = [m for m in list_models(task="image") if m not in TRANSFER_MODELS]
SPEC = InputSpec.image(32, 32, 3)


def test_the_seed_architectures_are_registered():
    assert {"mlp", "mnist_cnn", "cnn_bn_gap", "cifar_cnn", "cifar_cnn_bn", "resnet", "mini_resnet",
            "small_cnn", "fast_cnn"} <= set(IMAGE_MODELS)


def test_seed004_parameter_count_is_exact():
    assert create_model("mnist_cnn", InputSpec.image(28, 28, 1), 10).count_params() == 130_890


def test_seed003_mlp_parameter_count():
    # Flatten(784) -> Dense 128 -> Dense 10
    assert create_model("mlp", InputSpec.image(28, 28, 1), 10).count_params() == 784 * 128 + 128 + 128 * 10 + 10


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_builds_trains_a_step_and_round_trips(name, tmp_path):
    import keras

    model = create_model(name, SPEC, num_classes=4)
    assert model.inputs[0].dtype == "uint8"  # raw pixels in
    x = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1, 2, 3])
    out = np.asarray(model(x, training=False))
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(x, y)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)), atol=1e-6)


def test_unknown_parameter_and_wrong_task_are_clear():
    with pytest.raises(ValueError, match="has no parameter 'widht'"):
        create_model("fast_cnn", SPEC, 3, widht=3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        create_model("mlp", SPEC, 1)
    with pytest.raises(ValueError, match="takes image input but the dataset gives text"):
        create_model("mlp", InputSpec.text(), 2)


def test_preprocessing_layer_converts_channels_and_size():
    from tfpilot.models.layers import ImagePreprocessing

    layer = ImagePreprocessing(target_size=(8, 8), channels=3)
    out = np.asarray(layer(np.full((1, 4, 4, 1), 255, np.uint8)))
    assert out.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    gray = ImagePreprocessing(channels=1)(np.full((1, 2, 2, 3), 255, np.uint8))
    np.testing.assert_allclose(np.asarray(gray), 1.0, atol=1e-3)
    again = ImagePreprocessing.from_config(layer.get_config())
    assert again.target_size == (8, 8) and again.channels == 3
