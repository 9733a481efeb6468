"""Grad-CAM on models that learned where a bright object is: a Sequential CNN, a functional
model with a nested backbone, and a Sequential model around that backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SIZE = 32


def object_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise plus a bright 1x12 line (a distractor in every image); class 1 also has a bright
    5x5 square. Returns ``(x uint8 (n, 32, 32, 1), y, square top-left corners)``."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 50, size=(n, SIZE, SIZE, 1), dtype=np.uint8)
    y = np.arange(n) % 2
    corners = np.zeros((n, 2), int)
    for i in range(n):
        while True:
            r, c = rng.integers(0, SIZE - 5, size=2)
            br, bc = rng.integers(0, SIZE - 1), rng.integers(0, SIZE - 12)
            if not (br - 7 < r < br + 3 and bc - 7 < c < bc + 14):  # keep the square off the line
                break
        x[i, br, bc : bc + 12] = 255
        if y[i]:
            x[i, r : r + 5, c : c + 5] = 255
        corners[i] = r, c
    return x, y, corners


def _fit(model, x, y, epochs):
    import keras

    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def trained():
    """A Sequential CNN and a functional model with a nested backbone, trained on the task."""
    import keras
    from keras import layers

    from tfpilot.models.layers import ImagePreprocessing

    keras.utils.set_random_seed(0)
    x, y, _ = object_images(600, seed=1)
    sequential = keras.Sequential([
        keras.Input((SIZE, SIZE, 1), dtype="uint8"), ImagePreprocessing(),
        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(2, activation="softmax"),
    ], name="seq_cnn")
    _fit(sequential, x, y, epochs=6)

    b_in = keras.Input((SIZE, SIZE, 1))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(b_in)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(16, 3, padding="same")(h)
    h = layers.ReLU()(h)
    backbone = keras.Model(b_in, h, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 1), dtype="uint8")
    pre, gap, head = ImagePreprocessing(), layers.GlobalAveragePooling2D(), layers.Dense(2, activation="softmax")
    nested = keras.Model(inputs, head(gap(backbone(pre(inputs)))), name="transfer")
    _fit(nested, x, y, epochs=6)
    # seed 002's transfer-learning shape: Sequential([backbone, pooling, head]), same trained layers
    seq_nested = keras.Sequential([keras.Input((SIZE, SIZE, 1), dtype="uint8"), pre, backbone, gap, head],
                                  name="seq_transfer")
    return {"sequential": sequential, "nested": nested, "sequential_nested": seq_nested}


@pytest.mark.parametrize("kind,layer_path", [
    ("sequential", ["conv2d_1"]),
    ("nested", ["backbone", "re_lu"]),
    ("sequential_nested", ["backbone", "re_lu"]),
])
def test_heatmap_peaks_on_the_object(trained, kind, layer_path):
    from tfpilot.evaluation.gradcam import GradCAM

    model = trained[kind]
    x, y, corners = object_images(80, seed=7)
    accuracy = np.mean(np.argmax(model(x, training=False), axis=1) == y)
    assert accuracy > 0.9, f"the {kind} model did not learn the task (accuracy {accuracy:.2f})"
    cam = GradCAM(model)
    pos = y == 1
    heat = cam.heatmaps(x[pos], class_index=np.ones(pos.sum(), int))
    assert [name.split("_")[0] for name in cam.layer_path_[:-1]] == [p.split("_")[0] for p in layer_path[:-1]]
    assert cam.layer_path_[-1].rstrip("_0123456789") == layer_path[-1].rstrip("_0123456789")
    assert heat.shape == (pos.sum(), SIZE, SIZE)
    assert heat.dtype.kind == "f" and heat.min() >= 0.0 and heat.max() <= 1.0
    assert np.allclose(heat.max(axis=(1, 2)), 1.0)  # normalised per image
    hits = []
    for h, (r, c) in zip(heat, corners[pos]):
        pr, pc = np.unravel_index(np.argmax(h), h.shape)
        hits.append(r - 2 <= pr <= r + 6 and c - 2 <= pc <= c + 6)
        square = h[r : r + 5, c : c + 5].mean()
        assert square > h.mean(), "the object should be hotter than the image on average"
    assert np.mean(hits) >= 0.9, f"heatmap maximum on the object in only {np.mean(hits):.0%} of images"


def test_nested_and_sequential_wrappers_agree(trained):
    """Same trained layers, Sequential or functional outer model: the same heatmaps."""
    from tfpilot.evaluation.gradcam import GradCAM

    x, _, _ = object_images(6, seed=3)
    a = GradCAM(trained["nested"]).heatmaps(x)
    b = GradCAM(trained["sequential_nested"]).heatmaps(x)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_target_layer_of_zoo_models_without_training():
    """The last conv feature map is found in tfpilot's own models, residual ones included."""
    from tfpilot.evaluation.gradcam import GradCAM, find_target_layer
    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec

    mnist = create_model("mnist_cnn", InputSpec.image(28, 28, 1), 10)
    assert type(find_target_layer(mnist)[-1]).__name__ == "Conv2D"
    resnet = create_model("mini_resnet", InputSpec.image(32, 32, 3), 10)
    last = find_target_layer(resnet)[-1]
    assert type(last).__name__ == "ReLU" and tuple(last.output.shape[1:3]) == (2, 2)
    heat = GradCAM(mnist).heatmaps(np.zeros((2, 28, 28, 1), np.uint8))
    assert heat.shape == (2, 28, 28) and heat.min() >= 0 and heat.max() <= 1


def test_explicit_layer_and_clear_errors(trained):
    from tfpilot.evaluation.gradcam import GradCAM
    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec

    x, _, _ = object_images(2, seed=5)
    cam = GradCAM(trained["nested"])
    inner = [layer.name for layer in trained["nested"].get_layer("backbone").layers if "conv" in layer.name][0]
    early = GradCAM(trained["nested"], layer=f"backbone/{inner}")
    assert early.heatmaps(x).shape == (2, SIZE, SIZE) and early.layer_path_ == ["backbone", inner]
    assert GradCAM(trained["nested"], layer=inner).heatmaps(x).shape == (2, SIZE, SIZE)
    assert cam.heatmaps(x).shape == (2, SIZE, SIZE)
    with pytest.raises(ValueError, match="no layer 'nope'.*conv"):
        GradCAM(trained["nested"], layer="nope").heatmaps(x)
    mlp = create_model("mlp", InputSpec.image(8, 8, 1), 3)
    with pytest.raises(ValueError, match="no convolutional layer.*CNN"):
        GradCAM(mlp).heatmaps(np.zeros((1, 8, 8, 1), np.uint8))
    with pytest.raises(ValueError, match=r"batch of images \(N, H, W, C\)"):
        GradCAM(trained["sequential"]).heatmaps(np.zeros((SIZE, SIZE), np.uint8))


def test_overlay():
    from tfpilot.evaluation.gradcam import overlay

    gray = np.full((4, 5, 1), 100, np.uint8)
    out = overlay(gray, np.zeros((4, 5)), alpha=0.0)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and (out == 100).all()
    hot = overlay(gray, np.ones((4, 5)), alpha=1.0)
    assert (hot[..., 0] > hot[..., 2]).all()  # jet's 1.0 is red
    with pytest.raises(ValueError, match="does not match"):
        overlay(gray, np.ones((5, 4)))


def test_gradcam_api_and_cli_on_a_run(report_run: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from tfpilot import gradcam
    from tfpilot.cli.main import app

    images = sorted((report_run.parent / "shapes" / "square").glob("00*.png"))[:2]
    results = gradcam(report_run, images, out_dir=tmp_path / "api")
    assert [Path(r["path"]).name for r in results] == [f"{p.stem}_gradcam.png" for p in images]
    assert all(r["heatmap"].shape == (16, 16) and 0 <= r["heatmap"].min() <= r["heatmap"].max() <= 1
               for r in results)
    explained = gradcam(report_run, images[:1], class_name="circle")[0]
    assert explained["explained"] == "circle" and explained["path"] is None

    result = CliRunner().invoke(app, ["gradcam", str(report_run), str(images[0]), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(tmp_path / "cli" / f"{images[0].stem}_gradcam.png") as picture:
        assert picture.width > picture.height >= 224  # input | overlay, upscaled
    bad = CliRunner().invoke(app, ["gradcam", str(report_run), str(images[0]), "--class", "hexagon"])
    assert bad.exit_code == 2 and "unknown class 'hexagon'" in bad.output
