"""tfpilot verify: each artifact against the Keras model on the run's test split."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.export import verify


def test_verify_reports_every_exported_format(image_run, image_export, image_test_data):
    report = verify(image_run)
    _, y = image_test_data
    assert [c.format for c in report.checks] == ["saved_model", "tflite", "tflite-fp16", "tflite-dynamic",
                                                 "tflite-int8", "onnx"]
    assert report.num_examples == len(y) and report.passed
    by = {c.format: c for c in report.checks}
    for fmt in ("saved_model", "tflite", "tflite-fp16", "onnx"):
        assert by[fmt].agreement == 1.0
        assert by[fmt].max_prob_diff < 0.02
        assert by[fmt].accuracy == report.keras_accuracy
    assert by["tflite-int8"].gated and not by["tflite"].gated
    assert by["tflite-int8"].size_bytes < by["tflite"].size_bytes


def test_verify_one_artifact_finds_its_run(image_export):
    artifact = next(a.path for a in image_export.artifacts if a.format == "onnx")
    report = verify(artifact, limit=30)
    assert [c.format for c in report.checks] == ["onnx"] and report.num_examples == 30


def test_verify_cli_prints_a_row_per_format_and_json(image_run, image_export):
    result = CliRunner().invoke(app, ["verify", str(image_run)])
    assert result.exit_code == 0, result.output
    for fmt in ("saved_model", "tflite-fp16", "tflite-int8", "onnx"):
        assert fmt in result.output
    result = CliRunner().invoke(app, ["verify", str(image_run), "--json", "--data", "train", "--limit", "12"])
    data = json.loads(result.stdout)  # logs go to stderr
    assert data["split"] == "train" and data["num_examples"] == 12 and data["passed"]


def test_verify_cli_fails_a_collapsed_int8_artifact(outlier_run):
    from tfpilot.export import export

    export(outlier_run, ["tflite", "tflite-int8"], max_drop=100.0)  # let it through the export gate
    result = CliRunner().invoke(app, ["verify", str(outlier_run)])
    output = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 1
    assert "FAIL" in output and "tflite-int8 loses" in output and "tflite-fp16" in output
    result = CliRunner().invoke(app, ["verify", str(outlier_run), "--max-drop", "100", "--min-agreement", "0.99"])
    assert result.exit_code == 1 and "below --min-agreement" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["verify", str(outlier_run / "export" / "tflite"), "--min-agreement", "0.99"])
    assert result.exit_code == 0, result.output  # the float artifact of the same model is fine


def test_verify_without_exports_says_how_to_make_them(tmp_path, image_run):
    import shutil

    run = shutil.copytree(image_run, tmp_path / "run", ignore=shutil.ignore_patterns("export"))
    result = CliRunner().invoke(app, ["verify", str(run)])
    assert result.exit_code == 2 and "tfpilot export" in result.output


def test_the_gate_verify_and_the_predictor_call_the_model_at_the_runs_evaluation_batch(image_run, tmp_path,
                                                                                      monkeypatch):
    """A run whose memory plan lowered train.eval_batch_size (mnist_cnn at 768x1024 segfaulted at 256
    images a call) is exported, verified and loaded at that batch."""
    import shutil

    import yaml

    import tfpilot
    from tfpilot.export import export, runtime
    from tfpilot.export.source import ExportSource

    run = tmp_path / "run"
    shutil.copytree(image_run, run, ignore=shutil.ignore_patterns("export", "checkpoints", "logs", "backup"))
    tree = yaml.safe_load((run / "config.yaml").read_text())
    tree["train"]["eval_batch_size"] = 7
    (run / "config.yaml").write_text(yaml.safe_dump(tree))
    calls = []
    batched = runtime.run_batched
    monkeypatch.setattr(runtime, "run_batched", lambda r, x, batch_size=256: calls.append(batch_size) or
                        batched(r, x, batch_size))
    assert ExportSource.from_run(run).batch_size == 7 and tfpilot.load(run).batch_size == 7
    export(run, ["tflite-int8"])  # the int8 gate runs the Keras model and the artifact
    report = verify(run)
    assert report.passed and report.checks[0].format == "tflite-int8"
    assert calls == [7, 7, 7, 7]
