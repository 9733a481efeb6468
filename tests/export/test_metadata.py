"""Class names and preprocessing survive inside each artifact, not only in bundle.json."""

from __future__ import annotations

import json

import pytest

from tfpilot.export.bundle import METADATA_KEY, Bundle, describe_preprocessing
from tfpilot.spec import InputSpec

CLASSES = ["circle", "square", "triangle"]


def artifact(result, fmt):
    return next(a for a in result.artifacts if a.format == fmt)


def test_bundle_round_trips_through_json():
    b = Bundle(format="onnx", file="model.onnx", class_names=["a", "b"], input_spec=InputSpec.text(),
               preprocessing=[{"step": "TextVectorization"}], source_run="/runs/x")
    again = Bundle.from_json(b.to_json())
    assert again.class_names == ["a", "b"] and again.input_spec == InputSpec.text()
    assert again.source_run == "/runs/x" and again.tfpilot_version and again.created


def test_a_bundle_missing_keys_says_which():
    with pytest.raises(ValueError, match="class_names"):
        Bundle.from_json(json.dumps({"format": "tflite", "file": "m.tflite", "input_spec": {}}))
    with pytest.raises(ValueError, match="not valid JSON"):
        Bundle.from_json("{oops")


def test_describe_preprocessing_reports_the_image_stem():
    from tfpilot.models import create_model

    steps = describe_preprocessing(create_model("mlp", InputSpec.image(8, 8, 1), 2))
    assert steps[0]["step"] == "ImagePreprocessing" and steps[0]["scale"] == pytest.approx(1 / 255)


def test_tflite_files_embed_their_bundle(image_export, text_export):
    from tfpilot.export.tflite import read_embedded_bundle

    for fmt in ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8"):
        a = artifact(image_export, fmt)
        (a.path.parent / "bundle.json").unlink()  # the file alone must still say everything
        embedded = read_embedded_bundle(a.path)
        assert embedded.class_names == CLASSES and embedded.format == fmt
        assert embedded.input_spec == InputSpec.image(16, 16, 3)
        assert embedded.preprocessing[0]["step"] == "ImagePreprocessing"
        a.bundle.write(a.path.parent)  # put it back for the other tests
    assert read_embedded_bundle(artifact(text_export, "tflite").path).class_names == ["neg", "pos"]


def test_onnx_metadata_props_hold_class_names(image_export):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(artifact(image_export, "onnx").path)).metadata_props}
    assert json.loads(props["class_names"]) == CLASSES
    assert Bundle.from_json(props[METADATA_KEY]).input_spec == InputSpec.image(16, 16, 3)


def test_saved_model_holds_class_names_in_assets_and_a_signature(image_export):
    import tensorflow as tf

    folder = artifact(image_export, "saved_model").path
    assert (folder / "assets" / "labels.txt").read_text().split() == CLASSES
    assert Bundle.from_json((folder / "assets" / "bundle.json").read_text()).class_names == CLASSES
    meta = tf.saved_model.load(str(folder)).signatures["metadata"]()
    assert [c.decode() for c in meta["class_names"].numpy()] == CLASSES
    assert json.loads(meta["bundle"].numpy())["format"] == "saved_model"


def test_every_bundle_names_its_run_and_precision(image_export, image_run):
    from tfpilot.export import read_bundle

    for a in image_export.artifacts:
        b = read_bundle(a.path)
        assert b.class_names == CLASSES
        assert b.source_run == str(image_run.resolve())
        assert b.precision
    assert "int8 weights and activations" in read_bundle(artifact(image_export, "tflite-int8").path).precision
