"""tfpilot export / load / prune from the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from tfpilot.cli.main import app


def test_export_cli_writes_chosen_formats_to_out(image_run, tmp_path):
    out = tmp_path / "deploy"
    result = CliRunner().invoke(app, ["export", str(image_run), "-f", "tflite-fp16", "-f", "keras", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "tflite-fp16" / "model.tflite").is_file() and (out / "keras" / "model.keras").is_file()
    assert "float16 weights" in result.output


def test_export_cli_refuses_unknown_formats_with_a_suggestion(image_run):
    result = CliRunner().invoke(app, ["export", str(image_run), "--format", "tflite-int"])
    assert result.exit_code == 2 and "Did you mean" in result.output and "tflite-int8" in result.output


def test_load_cli_describes_and_predicts(image_export, tmp_path):
    import numpy as np

    from tfpilot.testing import write_image

    img = write_image(tmp_path / "x.png", np.zeros((16, 16, 3), np.uint8))
    artifact = next(a.path for a in image_export.artifacts if a.format == "tflite-int8")
    result = CliRunner().invoke(app, ["load", str(artifact), str(img)])
    assert result.exit_code == 0, result.output
    assert "tflite-int8" in result.output and "circle, square, triangle" in result.output
    assert "x.png" in result.output


def test_prune_cli_reports_sparsity_size_and_accuracy(image_run, tmp_path):
    result = CliRunner().invoke(app, ["prune", str(image_run), "--sparsity", "0.6", "--epochs", "1",
                                      "--out", str(tmp_path / "p60")])
    assert result.exit_code == 0, result.output
    for word in ("sparsity", "gzip", "accuracy after"):
        assert word in result.output


def test_export_never_deletes_folders_it_did_not_write(image_run, tmp_path):
    mine = tmp_path / "out" / "onnx"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["export", str(image_run), "-f", "onnx", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "was not written by tfpilot export" in " ".join(result.output.split())
    assert (mine / "notes.txt").read_text() == "keep me"
