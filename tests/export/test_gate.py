"""The tflite-int8 accuracy gate: a model int8 cannot represent must fail the export."""

from __future__ import annotations

import numpy as np
import pytest

from tfpilot.export import GateError, export
from tfpilot.export.verify import compare


def test_compare_fails_only_gated_formats_beyond_max_drop():
    y = np.array([0, 1, 1, 0])
    ref = np.eye(2)[y] * 0.8 + 0.1
    worse = np.eye(2)[[0, 1, 0, 0]] * 0.8 + 0.1  # one of four wrong: -25 points
    assert not compare("tflite-int8", "m", worse, ref, y, max_drop=1.0).passed
    assert compare("tflite-int8", "m", worse, ref, y, max_drop=30.0).passed
    assert compare("tflite-fp16", "m", worse, ref, y, max_drop=1.0).passed  # only int8 is gated
    assert not compare("tflite-fp16", "m", worse, ref, y, min_agreement=0.9).passed


def test_int8_gate_fails_the_export_and_suggests_fp16(outlier_run, image_test_data):
    import tfpilot

    run = outlier_run
    x, y = image_test_data
    keras_acc = np.mean(tfpilot.load(run).predict_proba(x).argmax(1) == y)
    assert keras_acc > 0.6  # the float model is still good ...
    with pytest.raises(GateError) as info:
        export(run, ["tflite", "tflite-int8"], max_drop=1.0)
    message = str(info.value)
    assert "tflite-int8 loses" in message and "--max-drop 1" in message
    assert "tflite-fp16" in message and "tflite-dynamic" in message
    assert not (run / "export" / "tflite-int8").exists()  # ... the failed artifact is not left behind
    assert (run / "export" / "tflite" / "model.tflite").is_file()  # the others are written


def test_int8_gate_failure_exits_nonzero_from_the_cli(outlier_run):
    from typer.testing import CliRunner

    from tfpilot.cli.main import app

    run = outlier_run
    result = CliRunner().invoke(app, ["export", str(run), "--format", "tflite-int8"])
    assert result.exit_code == 1
    assert "export failed" in result.output and "tflite-fp16" in result.output


def test_int8_gate_passes_a_normal_model(image_export):
    check = image_export.checks["tflite-int8"]
    assert check["passed"] and check["gated"] and check["accuracy_change"] >= -1.0
