"""``tfpilot evaluate --tta flip``: the flip-averaged figures are written beside the plain ones
(RUN/evaluations/test.json), computed from the mirrored images, and shown in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.evaluation import evaluate
from tfpilot.evaluation.predictions import predict_split
from tfpilot.runs import Run


def test_evaluate_tta_flip_writes_both_figures(report_run):
    result = evaluate(report_run, tta="flip")
    saved = json.loads((report_run / "evaluations" / "test.json").read_text())
    assert saved["tta"] == result["tta"] and saved["tta"]["mode"] == "flip"
    # recomputed by hand: the plain softmax averaged with the softmax of the mirrored images
    preds = predict_split(Run(report_run), "test")
    model = Run(report_run).load_model()
    images = preds.inputs(np.arange(len(preds.y_true)))
    flipped = np.asarray(model(np.ascontiguousarray(images[:, :, ::-1]), training=False))
    averaged = (preds.probs + flipped) / 2
    assert saved["tta"]["accuracy"] == pytest.approx(float(np.mean(averaged.argmax(1) == preds.y_true)))
    assert saved["accuracy"] == pytest.approx(float(np.mean(preds.probs.argmax(1) == preds.y_true)))
    assert not np.allclose(flipped, preds.probs)  # the mirror really was evaluated


def test_evaluate_without_tta_writes_no_tta_block_and_unknown_mode_is_refused(report_run):
    assert "tta" not in evaluate(report_run, save=False)
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rotate'"):
        evaluate(report_run, tta="rotate", save=False)


def test_cli_tta_flip_and_the_report_shows_both(report_run, tmp_path):
    from tfpilot.evaluation.report import report

    out = CliRunner().invoke(app, ["evaluate", str(report_run), "--tta", "flip"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "with test-time augmentation (flip)" in out.output
    tta = json.loads((report_run / "evaluations" / "test.json").read_text())["tta"]
    html = report(report_run, out=tmp_path / "report.html").read_text()
    assert "accuracy with TTA (flip)" in html and f"{tta['accuracy']:.4f} (plain " in html
