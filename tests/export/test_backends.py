"""Finding the right runtime for a path, and loading through tfpilot.inference.load."""

from __future__ import annotations

import pytest

import tfpilot
from tfpilot.export.backends import detect, resolve


def test_detect_finds_each_backend_from_folder_or_file(image_export):
    expected = {"keras": "keras", "saved_model": "saved_model", "tflite": "tflite", "tflite-int8": "tflite",
                "onnx": "onnx"}
    for fmt, backend in expected.items():
        a = next(a for a in image_export.artifacts if a.format == fmt)
        assert detect(a.path)[0] == backend
        folder = a.path if a.path.is_dir() else a.path.parent
        assert detect(folder)[0] == backend


def test_run_directory_with_a_backend_selects_its_export(image_run, image_export):
    predictor = tfpilot.load(image_run, backend="tflite-int8")
    assert predictor.model.format == "tflite-int8"
    assert tfpilot.load(image_run, backend="onnx").model.format == "onnx"
    found = resolve(image_run, "saved_model")
    assert found.backend == "saved_model" and found.bundle.class_names == ["circle", "square", "triangle"]
    assert type(tfpilot.load(image_run).model).__name__ == "Functional"  # plain run: the Keras model


def test_bad_paths_and_backends_say_what_to_do(image_run, image_export, tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'tflite'"):
        tfpilot.load(image_run, backend="tfite")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"\.tflite"):
        tfpilot.load(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="holds no artifact"):
        tfpilot.load(tmp_path)
    onnx_file = next(a.path for a in image_export.artifacts if a.format == "onnx")
    with pytest.raises(ValueError, match="onnx artifact, not tflite"):
        tfpilot.load(onnx_file, backend="tflite")


def test_missing_export_of_a_run_names_the_command(image_run, tmp_path):
    import shutil

    run = shutil.copytree(image_run, tmp_path / "run", ignore=shutil.ignore_patterns("export"))
    with pytest.raises(FileNotFoundError, match="tfpilot export .* --format tflite"):
        tfpilot.load(run, backend="tflite")


def test_a_corrupt_tflite_file_fails_clearly(tmp_path, image_export):
    import shutil

    folder = shutil.copytree(next(a.path for a in image_export.artifacts if a.format == "tflite").parent,
                             tmp_path / "tflite")
    (folder / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError):
        tfpilot.load(folder)
