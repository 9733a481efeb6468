"""Keras artifacts load with safe_mode=True, and float32 rebuilding of mixed-precision models."""

from __future__ import annotations

import numpy as np


def test_exported_keras_artifacts_load_with_safe_mode(image_export, text_export):
    import keras

    for result in (image_export, text_export):
        path = next(a.path for a in result.artifacts if a.format == "keras")
        model = keras.saving.load_model(path, safe_mode=True)
        assert model.outputs[0].shape[-1] in (1, 3)  # sigmoid text head, 3-class image head
    for fmt in ("tflite", "onnx"):  # the loader-side text preprocessing too
        folder = next(a.path for a in text_export.artifacts if a.format == fmt).parent
        pre = keras.saving.load_model(folder / "preprocess.keras", safe_mode=True)
        assert str(pre.outputs[0].dtype) == "int64"


def test_float32_model_rebuilds_a_mixed_bfloat16_model():
    from tfpilot.export import float32_model
    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec
    from tfpilot.training.precision import precision_policy

    with precision_policy("mixed_bfloat16"):
        model = create_model("fast_cnn", InputSpec.image(16, 16, 1), 3)
    f32 = float32_model(model)
    assert {layer.dtype_policy.name for layer in f32.layers} == {"float32"}
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in model.layers}  # original untouched
    x = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 1), dtype=np.uint8)
    np.testing.assert_allclose(np.asarray(f32(x)), np.asarray(model(x)), atol=0.02)
    assert float32_model(f32) is f32
