"""``tfpilot evaluate --tta flip``: every head's output averaged over the model run on the rows and on
the rows with every image input mirrored; the figures are written beside the plain ones
(RUN/evaluations/test.json) and shown in the report -- for a classifier and a table model alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.evaluation import evaluate
from tfpilot.evaluation.predictions import check_tta, predict_split
from tfpilot.runs import Run
from tfpilot.spec import FeatureSpec, TableSpec


def _by_hand(run: Run, preds, flip: bool) -> dict[str, np.ndarray]:
    """The model called directly on every test row, its photo mirrored left-right when ``flip``."""
    import tensorflow as tf

    photos = preds.inputs(np.arange(len(preds.rows)), "photo")
    x = {c.key: tf.constant(preds.rows.inputs[c.key]) for c in preds.spec.inputs if c.kind != "image"}
    x["photo"] = tf.constant(np.ascontiguousarray(photos[:, :, ::-1] if flip else photos))
    return {k: np.asarray(v) for k, v in run.load_model()(x, training=False).items()}


def test_table_tta_averages_every_head_over_the_mirrored_image_input(image_table_run):
    run = Run(image_table_run)
    plain = predict_split(run, "test")
    raw, mirrored = _by_hand(run, plain, flip=False), _by_hand(run, plain, flip=True)
    assert not np.allclose(raw["kind"], mirrored["kind"])  # the mirror changes what the model sees
    augmented = predict_split(run, "test", tta="flip")
    for key in ("kind", "price"):
        np.testing.assert_allclose(plain.outputs[key], raw[key], atol=1e-5)
        np.testing.assert_allclose(augmented.outputs[key], (raw[key] + mirrored[key]) / 2, atol=1e-5)
    result = evaluate(run.path, tta="flip")
    tta = json.loads((run.path / "evaluations" / "test.json").read_text())["tta"]
    assert tta == result["tta"] and tta["mode"] == "flip"
    y_kind, y_price = plain.rows.targets["kind"], plain.rows.targets["price"]
    averaged = (raw["kind"] + mirrored["kind"]) / 2
    assert tta["heads"]["kind"]["accuracy"] == pytest.approx(float(np.mean(averaged.argmax(1) == y_kind)))
    price = (raw["price"] + mirrored["price"]).reshape(-1) / 2
    assert tta["heads"]["price"]["mae"] == pytest.approx(float(np.mean(np.abs(price - y_price))), rel=1e-4)
    assert result["heads"]["kind"]["accuracy"] == pytest.approx(float(np.mean(raw["kind"].argmax(1) == y_kind)))
    out = CliRunner().invoke(app, ["evaluate", str(run.path), "--tta", "flip"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "with test-time augmentation (flip)" in out.output
    from tfpilot.evaluation.report import report

    html = report(run.path, out=run.path / "tta-report.html").read_text()
    assert f"accuracy with TTA (flip) of kind</th><td>{tta['heads']['kind']['accuracy']:.4f} (plain " in html


def test_tta_needs_an_image_input_and_a_known_mode():
    spec = TableSpec((FeatureSpec("title", "text"), FeatureSpec("size", "number")), (FeatureSpec("y", "number"),))
    inputs = r"the model's inputs are title \(text\), size \(number\)"
    with pytest.raises(ValueError, match=rf"--tta flip mirrors image inputs; {inputs}: evaluate it without --tta"):
        check_tta("flip", spec)
    with pytest.raises(ValueError, match="unknown test-time augmentation 'rotate'"):
        check_tta("rotate", spec)


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
