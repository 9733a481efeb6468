"""The HTML report of a tiny image run: every section, every image embedded, nothing remote."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tfpilot.evaluation.report import SECTIONS


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_has_every_section_and_embeds_its_images(report_run: Path, report_html: Path):
    from PIL import Image

    assert report_html == report_run / "report.html"
    html = report_html.read_text(encoding="utf-8")
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}"><h2>{title}</h2>' in html, f"section {anchor!r} missing"
    from tfpilot.evaluation.predictions import predict_split

    images = _images(html)
    assert len(images) == html.count("<img ")  # every image is an embedded PNG
    preds = predict_split(report_run)
    wrong = int(np.sum(preds.y_pred != preds.y_true))
    cards = html.count('class="card"')
    assert cards == min(16, wrong) + min(8, len(preds.y_true) - wrong) >= 4  # the galleries' default sizes
    assert len(images) >= 4 + 2 * cards  # plots, plus input and Grad-CAM per gallery card
    for data in images:
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.format == "PNG" and picture.width > 0
    # self-contained: nothing a browser would fetch
    assert not re.search(r"https?://", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    plots = {p.name for p in (report_run / "plots").glob("*.png")}
    assert {"training_curves.png", "confusion_matrix.png", "reliability.png", "class_balance.png",
            "misclassified.png", "correct.png"} <= plots


def test_report_content_matches_the_run(report_run: Path, report_html: Path):
    from tfpilot.evaluation.predictions import predict_split

    html = report_html.read_text(encoding="utf-8")
    metrics = json.loads((report_run / "metrics.json").read_text())
    preds = predict_split(report_run)
    wrong = int(np.sum(preds.y_pred != preds.y_true))
    assert f"{wrong:,} of {len(preds.y_true):,} test examples are misclassified" in html
    assert f"{metrics['test']['accuracy']:.4f}" in html  # the same model on the same split as training
    assert f"{metrics['params']:,}" in html
    assert "fast_cnn" in html and "skipped files" in html and "corrupt_0.png" in html  # the data report
    assert "Grad-CAM of the <b>predicted</b> class" in html
    for name in ("circle", "square", "triangle"):
        assert f"<td>{name}</td>" in html  # per-class table
    assert "macro avg" in html and "weighted avg" in html and "balanced accuracy" in html
    assert "Expected calibration error" in html and "Resolved config (config.yaml)" in html
    assert "ROC AUC" not in html and not (report_run / "plots" / "roc_pr.png").exists()  # 3 classes: no binary curves


def test_report_cli_and_missing_run(report_run: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from tfpilot.cli.main import app

    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(report_run), "--out", str(out), "--misclassified", "2",
                                      "--correct", "0"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.count('class="card"') <= 2 and "A random sample of 0 correctly" in html
    missing = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert missing.exit_code == 2 and "not a finished tfpilot run" in " ".join(missing.output.split())


def test_binary_mlp_run_gets_roc_and_explains_missing_gradcam(tmp_path: Path):
    """A two-class MLP run via ``tfpilot.train`` (report on by default): ROC / PR curves, and
    a note instead of Grad-CAM (an MLP has no feature map). ``tfpilot train --no-report`` skips it."""
    from typer.testing import CliRunner

    import tfpilot
    from tfpilot.testing import make_image_folder, tiny_config

    folder = make_image_folder(tmp_path / "data", classes=("left", "right"), per_class=40, size=12)
    run = tfpilot.train(tiny_config(folder, tmp_path / "run", epochs=2))
    html = (run.path / "report.html").read_text(encoding="utf-8")
    assert "ROC AUC" in html and "average precision (PR AUC)" in html
    assert (run.path / "plots" / "roc_pr.png").is_file()
    assert "No Grad-CAM: model" in html and "has no convolutional layer" in html
    from tfpilot.cli.main import app

    result = CliRunner().invoke(app, ["train", "--dataset", str(folder), "--model", "mlp", "--epochs", "1",
                                      "--set", "train.callbacks.tensorboard=false", "--run-dir", str(tmp_path / "r2"),
                                      "--no-report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r2" / "model.keras").is_file() and not (tmp_path / "r2" / "report.html").exists()


def test_confused_pairs_orders_by_count():
    from tfpilot.evaluation.report import confused_pairs

    cm = np.array([[8, 1, 1], [5, 3, 0], [0, 2, 6]])
    assert confused_pairs(cm, ["a", "b", "c"], k=2) == [("b", "a", 5, 0.625), ("c", "b", 2, 0.25)]
    assert confused_pairs(np.eye(3, dtype=int), ["a", "b", "c"]) == []


@pytest.mark.parametrize("text", ["<br /><script>alert(1)</script>", "a & b"])
def test_text_explanation_html_is_escaped(text):
    from tfpilot.evaluation.explain_text import TextExplanation, Word

    words = tuple(Word(m.group(), m.start(), m.end(), 0.5) for m in re.finditer(r"\S+", text))
    out = TextExplanation(text, 0, 0.9, words).to_html()
    assert "<script" not in out and "<br" not in out
    assert re.sub(r"<[^>]+>", "", out).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


def test_a_failing_report_never_loses_the_trained_run(tmp_path: Path, caplog):
    from types import SimpleNamespace

    from tfpilot.evaluation.report import report_after_training
    from tfpilot.runs import Run

    trainer = SimpleNamespace(run_=Run(tmp_path), model_=None, data_=None)
    with caplog.at_level("WARNING", logger="tfpilot.evaluation.report"):
        assert report_after_training(trainer) is None
    assert f"retry with `tfpilot report {tmp_path}`" in caplog.text


def test_a_table_category_head_gets_the_classifier_parts_and_a_number_head_the_regression_ones(image_table_run):
    from tfpilot.evaluation.report import report

    html = report(image_table_run).read_text(encoding="utf-8")
    kind = html[html.index('<section id="head-kind">'):html.index('<section id="head-price">')]
    for part in ("Confusion matrix", "Most confused pairs", "Per-class metrics", "Calibration",
                 "Misclassified examples", "Correct predictions"):
        assert f"<h3>{part}</h3>" in kind
    assert "macro avg" in kind and "Expected calibration error" in kind and "baseline accuracy" in kind
    price = html[html.index('<section id="head-price">'):html.index('<section id="data">')]
    assert "<h3>Predicted vs true</h3>" in price and "Largest errors" in price and "error (predicted − true)" in price
    assert "<th>title</th>" in price and "<td>row " in price  # the rows' other inputs and their row numbers
    assert "<h3>Schema</h3>" in html
    plots = {p.name for p in (image_table_run / "plots").glob("*.png")}
    assert {"kind_confusion.png", "kind_reliability.png", "price_scatter.png", "price_residuals.png",
            "training_curves.png"} <= plots


def test_the_calibration_section_shows_reliability_before_and_after_the_temperature(report_run, report_html):
    from tfpilot.models.calibration import temperatures
    from tfpilot.runs import Run

    run = Run(report_run)
    record = run.metrics["calibration"]["label"]
    assert temperatures(run.load_model())["label"] == pytest.approx(record["temperature"], rel=1e-5)
    html = report_html.read_text(encoding="utf-8")
    part = html[html.index('<section id="calibration">'):html.index('<section id="misclassified">')]
    assert 'data-calibration="reliability_before"' in part and 'data-calibration="reliability"' in part
    assert f"A temperature of <b>{record['temperature']:.4f}</b>" in part
    before, after = map(float, re.search(r"<b>([0-9.]+)</b> before, <b>([0-9.]+)</b> after", part).groups())
    # the report takes the temperature back out of the model's outputs: training's figures, on the same test split
    assert before == pytest.approx(record["test"]["ece_before"], abs=2e-4)
    assert after == pytest.approx(record["test"]["ece_after"], abs=2e-4)
    assert {"reliability_before.png", "reliability.png"} <= {p.name for p in (report_run / "plots").glob("*.png")}


def test_table_figures_read_like_numbers_and_one_head_gets_no_empty_loss_frame():
    from tfpilot.evaluation.plots import training_curves
    from tfpilot.evaluation.report import _heads_table

    html = _heads_table({"heads": {"Price": {"kind": "number", "mae": 184744.9042, "rmse": 339513.5373,
                                             "r2": 0.72331, "mape": 17.0512}}})
    cells = re.findall(r'<td class="num">([^<]*)</td>', html)
    assert cells == ["184,745", "339,514", "0.7233", "17.05"]
    assert "<th>MAE</th>" in html and "<th>R²</th>" in html and "184744" not in html
    history = [{"loss": 0.9, "val_loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}]  # one head: no price_loss
    fig = training_curves(history, ["price"])
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Learning rate (epoch's first step)"]
    assert [ax.get_title() for ax in training_curves([{**h, "price_loss": 1.0, "kind_loss": 2.0} for h in history],
                                                     ["price", "kind"]).axes][:3] == ["Loss", "Price loss", "Kind loss"]


def test_a_leaderboard_csv_becomes_a_formatted_table(tmp_path: Path):
    from tfpilot.evaluation.report import leaderboard_section
    from tfpilot.runs import Run

    assert leaderboard_section(Run(tmp_path)) == ""  # no candidates: no section
    (tmp_path / "leaderboard.csv").write_text("model,val_rmse,test_rmse\nydf,258113.27,261004.7\nmlp,339513.54,"
                                              "341200.0\n", encoding="utf-8")
    html = leaderboard_section(Run(tmp_path))
    assert html.startswith('<section id="leaderboard"><h2>Leaderboard</h2>')
    assert re.findall(r'<td class="num">([^<]*)</td>', html) == ["258,113", "261,005", "339,514", "341,200"]
