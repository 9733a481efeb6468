"""A table model (image, text and category inputs; a category and a number head) through the
formats that were once refused for it: ONNX and full-integer int8, each verified head by head."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.export import GateError, export, verify


def test_onnx_export_of_a_table_model_verifies_every_head(table_run):
    import onnxruntime as ort

    result = export(table_run, ["onnx"])
    path = result.artifacts[0].path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # The raw image goes in as it is; the text and category columns as preprocess.keras makes them.
    assert {i.name: i.type for i in session.get_inputs()} == {
        "photo": "tensor(uint8)", "title": "tensor(float)", "colour": "tensor(float)"}
    assert sorted(o.name for o in session.get_outputs()) == ["kind", "price"]
    assert (path.parent / "preprocess.keras").is_file()
    out = CliRunner().invoke(app, ["verify", str(path), "--json"])
    assert out.exit_code == 0, out.output
    check = json.loads(out.stdout)["checks"][0]
    assert check["format"] == "onnx" and check["passed"]
    assert check["heads"]["kind"]["agreement"] == 1.0 and check["heads"]["kind"]["max_prob_diff"] < 1e-4
    assert check["heads"]["price"]["max_abs_diff"] < 1e-3


def test_int8_export_of_a_table_model_is_calibrated_on_named_inputs_and_gated_per_head(table_run):
    from tfpilot.export.tflite import make_interpreter

    try:
        result = export(table_run, ["tflite-int8"], max_drop=100.0)
    except GateError as exc:  # a head int8 moved too far: the reason names it, and nothing is left behind
        assert "on head 'price'" in str(exc) and "tflite-fp16" in str(exc)
        assert not (table_run / "export" / "tflite-int8").exists()
        return
    check = result.checks["tflite-int8"]
    assert check["passed"] and check["gated"] and set(check["heads"]) == {"kind", "price"}
    artifact = result.artifacts[0]
    assert "int8 weights and activations" in artifact.bundle.precision
    interpreter = make_interpreter(artifact.path)
    runner = interpreter.get_signature_runner("serving_default")
    assert set(runner.get_input_details()) == {"photo", "title", "colour"}
    assert set(runner.get_output_details()) == {"kind", "price"}
    assert any(np.dtype(t["dtype"]) == np.int8 for t in interpreter.get_tensor_details())
    again = verify(artifact.path).checks[0]  # verify holds it to the same per-head gate
    assert again.passed and again.heads["kind"]["agreement"] == check["heads"]["kind"]["agreement"]


def test_the_int8_gate_names_the_head_that_fails():
    from tfpilot.export.verify import judge

    heads = {"kind": {"kind": "category", "agreement": 0.5, "max_prob_diff": 0.4, "accuracy": 0.5,
                      "keras_accuracy": 0.9, "accuracy_change": -40.0},
             "price": {"kind": "number", "max_abs_diff": 0.1, "mean_abs_diff": 0.05, "max_diff_in_std": 0.01}}
    check = judge("tflite-int8", "m.tflite", heads, 10, max_drop=1.0, max_number_diff=0.25)
    assert not check.passed and "loses 40.00 accuracy points on head 'kind'" in check.message
    assert "price" not in check.message
    assert judge("tflite-int8", "m.tflite", heads, 10, max_drop=50.0, max_number_diff=0.25).passed
    with pytest.raises(AttributeError):
        check.no_such_figure  # noqa: B018
