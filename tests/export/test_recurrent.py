"""Recurrent text models (the seeds' LSTM): TFLite needs a fixed batch, full-integer int8
cannot be calibrated -- export says so and still writes every other format."""

from __future__ import annotations

import numpy as np
import pytest

import tfpilot
from tfpilot.export import ExportError, ExportSource, export
from tfpilot.spec import InputSpec


@pytest.fixture(scope="module")
def lstm_model(text_data):
    import keras
    import tensorflow as tf

    from tfpilot.models import create_model
    from tfpilot.models.text_layers import adaptable_layers

    texts, labels = text_data
    keras.utils.set_random_seed(0)
    model = create_model("lstm", InputSpec.text(), 2, vocab_size=64, sequence_length=8, embedding_dim=8, units=4)
    for layer in adaptable_layers(model):
        layer.adapt(texts)
    model.compile("adam", "binary_crossentropy")
    model.fit(tf.constant(texts.astype(str)), labels, epochs=2, batch_size=16, verbose=0)
    return model


def test_lstm_exports_with_batch_one_tflite_and_refuses_int8(lstm_model, text_data, tmp_path):
    import tensorflow as tf

    from tfpilot.metrics import to_probabilities

    texts, labels = text_data
    source = ExportSource(lstm_model, ["neg", "pos"], InputSpec.text(), calibration=texts, evaluation=(texts, labels))
    with pytest.raises(ExportError) as info:
        export(source, ["saved_model", "tflite", "tflite-int8", "onnx"], tmp_path)
    result = info.value.result
    assert "tflite-dynamic" in result.failed["tflite-int8"] and not (tmp_path / "tflite-int8").exists()
    assert [a.format for a in result.artifacts] == ["saved_model", "tflite", "onnx"]
    tflite = next(a for a in result.artifacts if a.format == "tflite")
    assert tflite.bundle.input["shape"] == [1, 8] and "batch size is fixed at 1" in tflite.bundle.input["note"]
    expected = to_probabilities(np.asarray(lstm_model(tf.constant(texts.astype(str)))))
    for a in result.artifacts:
        probs = tfpilot.load(a.path).predict_proba(list(texts))
        np.testing.assert_allclose(probs, expected, atol=1e-4)
