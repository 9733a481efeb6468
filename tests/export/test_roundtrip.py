"""Every format's round trip: export -> load -> the Keras model's predictions, on raw inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tfpilot
from tfpilot.export import list_formats

ALL = ["keras", "saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx"]
EXACT = ["keras", "saved_model", "tflite", "tflite-fp16", "onnx"]  # float artifacts


def test_all_formats_are_registered_in_order():
    assert list_formats() == ALL


def test_image_run_exports_every_format(image_export):
    assert [a.format for a in image_export.artifacts] == ALL
    for a in image_export.artifacts:
        assert a.path.exists() and a.size_bytes > 0
        assert (a.path / "bundle.json" if a.path.is_dir() else a.path.parent / "bundle.json").is_file()
    assert image_export.checks["tflite-int8"]["passed"]


@pytest.mark.parametrize("fmt", ALL)
def test_image_artifact_answers_raw_pixels_like_keras(fmt, image_run, image_export, image_test_data):
    x, _ = image_test_data
    keras_probs = tfpilot.load(image_run).predict_proba(x)
    artifact = next(a.path for a in image_export.artifacts if a.format == fmt)
    predictor = tfpilot.load(artifact)
    assert predictor.class_names == ["circle", "square", "triangle"]
    probs = predictor.predict_proba(x)
    assert probs.shape == keras_probs.shape
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-3 if fmt in EXACT else 0.02)  # int8: steps of 1/256
    agreement = np.mean(probs.argmax(1) == keras_probs.argmax(1))
    if fmt in EXACT:
        assert agreement == 1.0
        np.testing.assert_allclose(probs, keras_probs, atol=0.02)  # Keras computes in bf16 here
    else:
        assert agreement >= 0.9
        np.testing.assert_allclose(probs, keras_probs, atol=0.2)


@pytest.mark.parametrize("fmt", ["keras", "saved_model", "tflite", "onnx"])
def test_predictor_takes_files_of_other_sizes(fmt, image_run, image_export, tmp_path):
    from tfpilot.testing import write_image

    rng = np.random.default_rng(1)
    big = write_image(tmp_path / "big.png", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    artifact = next(a.path for a in image_export.artifacts if a.format == fmt)
    top = tfpilot.load(artifact).predict([str(big)], top_k=2)[0]
    assert top["label"] == tfpilot.load(image_run).predict([str(big)])[0]["label"]
    assert len(top["top_k"]) == 2


def test_saved_model_resizes_any_size_and_decodes_bytes_inside(image_export, image_run, tmp_path):
    import tensorflow as tf

    from tfpilot.testing import write_image

    served = tf.saved_model.load(str(image_export.out_dir / "saved_model"))
    assert {"serving_default", "serving_bytes", "metadata"} <= set(served.signatures)
    rng = np.random.default_rng(2)
    big = rng.integers(0, 255, (2, 48, 40, 3), dtype=np.uint8)
    out = served.signatures["serving_default"](images=tf.constant(big))
    assert out["probabilities"].shape == (2, 3)
    expected = tfpilot.load(image_run).predict_proba(big)  # the Predictor resizes the same way
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=0.02)
    assert [c.decode() for c in out["classes"].numpy()] == [
        ["circle", "square", "triangle"][i] for i in expected.argmax(1)]
    png = write_image(tmp_path / "x.png", big[0]).read_bytes()
    by_bytes = served.signatures["serving_bytes"](image_bytes=tf.constant([png]))
    np.testing.assert_allclose(by_bytes["probabilities"].numpy()[0], expected[0], atol=0.02)


@pytest.mark.parametrize("fmt", ALL)
def test_text_artifact_answers_raw_strings_like_keras(fmt, text_model, text_export, text_data):
    import tensorflow as tf

    texts = np.concatenate([text_data[0], np.asarray(["An unseen word zyzzyva", ""], dtype=object)])
    p1 = np.asarray(text_model(tf.constant(texts.astype(str))))[:, 0]
    keras_probs = np.stack([1 - p1, p1], axis=1)
    artifact = next(a.path for a in text_export.artifacts if a.format == fmt)
    predictor = tfpilot.load(artifact)
    assert predictor.class_names == ["neg", "pos"]
    assert predictor.input_spec.kind == "text"
    probs = predictor.predict_proba(list(texts))  # raw Python strings in
    from tfpilot.metrics import to_probabilities

    np.testing.assert_allclose(to_probabilities(predictor.model(texts)), probs, atol=1e-6)  # the callable alone
    clear = np.abs(keras_probs[:, 1] - keras_probs[:, 0]) > 0.05  # near-ties may flip under int8
    assert clear.sum() >= len(text_data[0])
    assert np.all(probs.argmax(1)[clear] == keras_probs.argmax(1)[clear])
    np.testing.assert_allclose(probs, keras_probs, atol=0.02 if fmt == "tflite-int8" else 1e-4)


def test_text_tflite_and_onnx_take_token_ids_and_ship_the_vectorizer(text_export):
    for fmt in ("tflite", "tflite-int8", "onnx"):
        artifact = next(a for a in text_export.artifacts if a.format == fmt)
        folder = artifact.path.parent
        bundle = json.loads((folder / "bundle.json").read_text())
        assert bundle["loader_files"] == {"preprocess": "preprocess.keras", "vocabulary": "vocab.txt"}
        assert "token ids" in bundle["input"]["note"] and bundle["input"]["dtype"] == "int64"
        assert bundle["preprocessing"][0]["step"] == "TextVectorization"
        assert bundle["output"]["shape"] == [None, 1] and "sigmoid probability of 'pos'" in bundle["output"]["meaning"]
        assert "loader" in bundle["preprocessing"][0]["where"]
        vocab = (folder / "vocab.txt").read_text().splitlines()
        assert vocab[1] == "[UNK]" and "great" in vocab


def test_loader_says_what_is_missing_when_the_vectorizer_is_gone(text_export, tmp_path):
    import shutil

    src = next(a.path for a in text_export.artifacts if a.format == "tflite").parent
    copy = shutil.copytree(src, tmp_path / "tflite")
    (copy / "preprocess.keras").unlink()
    with pytest.raises(FileNotFoundError, match="preprocess.keras"):
        tfpilot.load(copy)
