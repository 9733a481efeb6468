"""A two-input two-output table model through every stage: train -> evaluate -> report -> predict
-> export (SavedModel, TFLite) -> verify; serving is in test_table_serving.py."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.config import load_config
from tfpilot.runs import Run

runner = CliRunner()


def test_training_writes_the_resolved_schema_and_per_head_metrics(table_run, table_csv):
    run = Run(table_run)
    labels = run.labels
    assert labels["task"] == "table"
    assert [(f["name"], f["kind"]) for f in labels["input"]["inputs"]] == [("photo", "image"), ("title", "text")]
    assert [(f["name"], f["kind"]) for f in labels["input"]["outputs"]] == [("kind", "category"), ("price", "number")]
    assert labels["input"]["outputs"][0]["classes"] == ["ant", "bee", "cat"]
    test = run.metrics["test"]
    assert set(test["heads"]) == {"kind", "price"}
    # The image and the title both name the kind: the model learns it, well above the majority baseline.
    assert test["heads"]["kind"]["accuracy"] >= 0.75 > test["heads"]["kind"]["baseline_accuracy"]
    price = test["heads"]["price"]
    assert {"mae", "rmse", "r2", "mape", "baseline_mae"} <= set(price)
    # The saved schema is a config fragment that trains the same features again.
    schema = yaml.safe_load(run.file("schema.yaml").read_text())
    again = load_config(schema, dataset=str(table_csv))
    assert [(i.name, i.type) for i in again.features.inputs] == [("photo", "image"), ("title", "text")]
    assert [(o.name, o.type, o.loss, o.loss_weight) for o in again.features.outputs] == [
        ("kind", "category", None, 1.0), ("price", "number", "huber", 0.5)]
    # config.yaml holds the resolved types too: the run reproduces from it alone.
    assert [o.type for o in load_config(run.config_file).features.outputs] == ["category", "number"]
    history = run.history
    assert {"kind_loss", "price_loss", "val_kind_accuracy", "val_price_mae"} <= set(history[-1])


def test_evaluate_gives_the_training_time_test_metrics(table_run):
    result = runner.invoke(app, ["evaluate", str(table_run), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    saved = Run(table_run).metrics["test"]["heads"]
    assert got["heads"]["kind"]["accuracy"] == pytest.approx(saved["kind"]["accuracy"])
    assert got["heads"]["price"]["mae"] == pytest.approx(saved["price"]["mae"], rel=1e-5)
    assert got["evaluated_on"]["recorded_split"] is True


def test_report_has_a_section_per_head_with_the_worst_rows(table_run):
    html = Run(table_run).file("report.html").read_text()
    for anchor in ('id="summary"', 'id="training"', 'id="head-kind"', 'id="head-price"', 'id="data"'):
        assert anchor in html
    assert "Largest errors" in html and "predicted vs true" in html
    assert html.count("data:image/png;base64,") >= 5  # plots and row thumbnails, embedded
    plots = {p.name for p in (table_run / "plots").iterdir()}
    assert {"price_scatter.png", "price_residuals.png", "kind_confusion.png"} <= plots


def test_predict_cli_writes_every_head_per_row(table_run, table_csv, tmp_path):
    rows = pd.read_csv(table_csv).head(5)
    rows_file = table_csv.parent / "rows.csv"
    rows.drop(columns=["kind", "price"]).to_csv(rows_file, index=False)
    result = runner.invoke(app, ["predict", str(table_run), str(rows_file), "--format", "csv"])
    assert result.exit_code == 0, result.output
    got = list(csv.DictReader(io.StringIO(result.output)))
    assert [list(r)[:4] for r in got][:1] == [["input", "kind", "kind_score", "price"]]
    import tfpilot

    expected = tfpilot.load(table_run).predict(rows, base_dir=table_csv.parent)
    assert [r["kind"] for r in got] == [e["kind"]["label"] for e in expected]
    assert [float(r["price"]) for r in got] == pytest.approx([e["price"] for e in expected], rel=1e-5)


def test_predictor_takes_dicts_and_dataframes_alike(table_run, table_csv):
    import tfpilot

    predictor = tfpilot.load(table_run)
    frame = pd.read_csv(table_csv).head(4)
    dicts = [{"photo": str(table_csv.parent / p), "title": t} for p, t in zip(frame.photo, frame.title)]
    a = predictor.predict_raw(frame, base_dir=table_csv.parent)
    b = predictor.predict_raw(dicts)
    np.testing.assert_allclose(a["kind"], b["kind"], rtol=1e-6)
    np.testing.assert_allclose(a["price"], b["price"], rtol=1e-6)
    out = predictor.predict(dicts, top_k=2)[0]
    assert set(out) == {"kind", "price"} and len(out["kind"]["top_k"]) == 2
    assert isinstance(out["price"], float)


def test_export_and_verify_every_head(table_run, table_csv):
    result = runner.invoke(app, ["export", str(table_run), "--format", "saved_model", "--format", "tflite"])
    assert result.exit_code == 0, result.output
    assert (table_run / "export" / "saved_model" / "saved_model.pb").is_file()
    assert (table_run / "export" / "tflite" / "preprocess.keras").is_file()  # the string layers, beside
    result = runner.invoke(app, ["verify", str(table_run), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] and [c["format"] for c in report["checks"]] == ["saved_model", "tflite"]
    for check in report["checks"]:
        assert check["heads"]["kind"]["agreement"] == 1.0
        assert check["heads"]["price"]["max_abs_diff"] < 1e-3
    import tfpilot

    rows = pd.read_csv(table_csv).head(6)
    keras_out = tfpilot.load(table_run).predict_raw(rows, base_dir=table_csv.parent)
    tflite_out = tfpilot.load(table_run / "export" / "tflite").predict_raw(rows, base_dir=table_csv.parent)
    np.testing.assert_allclose(tflite_out["price"], keras_out["price"], atol=1e-3)


def test_saved_model_signature_takes_named_raw_inputs(table_run, table_csv):
    import tensorflow as tf

    if not (table_run / "export" / "saved_model").is_dir():
        runner.invoke(app, ["export", str(table_run), "--format", "saved_model"])
    served = tf.saved_model.load(str(table_run / "export" / "saved_model"))
    sig = served.signatures["serving_bytes"]
    image = (table_csv.parent / "images" / "0000.png").read_bytes()
    out = sig(photo=tf.constant([image]), title=tf.constant(["red small ant item"]))
    assert set(out) == {"kind", "kind_label", "price"}
    assert out["kind"].shape == (1, 3) and out["price"].shape == (1,)
    assert out["kind_label"].numpy()[0].decode() in ("ant", "bee", "cat")
