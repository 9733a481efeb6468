"""Text end to end through the CLI: train on a raw-text CSV, then predict from --text,
.txt and .csv inputs; the Python Predictor takes strings too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.testing.text import make_text_corpus, write_text_table

runner = CliRunner()

POSITIVE = "A wonderful, superb film: the best I loved!"
NEGATIVE = "The worst and most boring plot, awful and dull."


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_cli")
    texts, labels = make_text_corpus(160, seed=4)
    data = write_text_table(root / "reviews.csv", texts, labels, text_column="review", label_column="sentiment")
    run_dir = root / "run"
    result = runner.invoke(app, [
        "train", "--dataset", str(data), "--model", "ngram_mlp", "--epochs", "6", "--batch-size", "16",
        "--run-dir", str(run_dir), "--no-report",
        "--set", "model.params={vocab_size: 300, hidden_units: [16], dropout: 0.2}",
        "--set", "train.optimizer.learning_rate=0.01", "--set", "train.callbacks.tensorboard=false",
        "--set", "train.callbacks.early_stopping.enabled=false",
    ])
    assert result.exit_code == 0, result.output
    return root, run_dir, result.output


def test_train_on_a_raw_text_csv(text_run):
    _, run_dir, output = text_run
    assert "test accuracy:" in output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    split = json.loads((run_dir / "split.json").read_text())["splits"]
    assert metrics["test"]["accuracy"] >= 0.9 and metrics["test"]["num_examples"] == len(split["test"])
    assert sum(map(len, split.values())) == 160  # every row of the table is in one split
    labels = json.loads((run_dir / "labels.json").read_text())
    assert labels["class_names"] == ["neg", "pos"] and labels["input"]["kind"] == "text"


def test_predict_repeated_text_options(text_run):
    _, run_dir, _ = text_run
    res = runner.invoke(app, ["predict", str(run_dir), "--text", POSITIVE, "--text", NEGATIVE, "-f", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert rows[0]["text"] == POSITIVE and 0.5 < rows[0]["score"] <= 1.0
    assert abs(sum(t["score"] for t in rows[1]["top_k"]) - 1.0) < 1e-5
    table = runner.invoke(app, ["predict", str(run_dir), "-t", POSITIVE])
    assert table.exit_code == 0 and "pos (" in table.output


def test_predict_a_txt_file_one_text_per_line_and_a_csv_column(text_run, tmp_path):
    _, run_dir, _ = text_run
    txt = tmp_path / "new.txt"
    txt.write_text(f"{POSITIVE}\n\n{NEGATIVE}\n")
    res = runner.invoke(app, ["predict", str(run_dir), str(txt), "-f", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("input,label,score") and len(lines) == 3
    assert lines[1].startswith("new.txt:1,pos,") and lines[2].startswith("new.txt:3,neg,")
    csv_file = write_text_table(tmp_path / "new.csv", [NEGATIVE, POSITIVE], ["?", "?"], text_column="comment")
    res = runner.invoke(app, ["predict", str(run_dir), str(csv_file), "--column", "comment", "-f", "json"])
    assert res.exit_code == 0, res.output
    assert [r["label"] for r in json.loads(res.output)] == ["neg", "pos"]
    res = runner.invoke(app, ["predict", str(run_dir), str(csv_file), "--column", "body"])
    message = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == 2 and "no column 'body'" in message and "'comment'" in message


def test_predict_without_inputs_is_a_clear_error(text_run):
    _, run_dir, _ = text_run
    res = runner.invoke(app, ["predict", str(run_dir)])
    assert res.exit_code == 2 and "nothing to predict" in " ".join(res.output.split())


def test_evaluate_a_text_run(text_run):
    _, run_dir, _ = text_run
    res = runner.invoke(app, ["evaluate", str(run_dir), "--json"])
    assert res.exit_code == 0, res.output
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]
    result = json.loads(res.output)
    assert result["num_examples"] == trained["num_examples"] and result["accuracy"] == pytest.approx(trained["accuracy"])


def test_python_predictor_takes_strings(text_run):
    import tfpilot
    from tfpilot.inference import InputError

    _, run_dir, _ = text_run
    predictor = tfpilot.load(run_dir)
    assert predictor.predict(POSITIVE)[0]["label"] == "pos"
    probs = predictor.predict_proba([POSITIVE, NEGATIVE.encode()])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0)
    same = predictor.predict_proba(np.array([POSITIVE, NEGATIVE]))
    np.testing.assert_allclose(same, probs, rtol=1e-6)
    with pytest.raises(InputError, match="item 1: a text model takes strings"):
        predictor.predict(["fine", 3])
    with pytest.raises(InputError, match="no inputs"):
        predictor.predict([])


@pytest.mark.parametrize("name,content", [
    ("SMSSpamCollection", lambda rows: "".join(f"{y}\t{t}\n" for y, t in rows)),  # label<TAB>text, no header
    ("sms.csv", lambda rows: "".join(f'"{t}",{y}\n' for y, t in rows)),            # text,label, no header
])
def test_train_on_a_headerless_table_with_no_extra_flags(tmp_path, name, content):
    from tests.data.test_text import SMS_ROWS

    rows = [(y, t.replace('"', "'")) for y, t in SMS_ROWS] * 3
    data = tmp_path / name
    data.write_text(content(rows), encoding="utf-8")
    run_dir = tmp_path / "run"
    result = runner.invoke(app, [
        "train", "--dataset", str(data), "--model", "ngram_mlp", "--epochs", "1", "--run-dir", str(run_dir),
        "--no-report", "--set", "model.params={vocab_size: 200, hidden_units: [8]}",
        "--set", "train.callbacks.tensorboard=false",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "labels.json").read_text())["class_names"] == ["ham", "spam"]
    report = json.loads((run_dir / "data_report.json").read_text())
    assert any("no header" in n for n in report["notes"]), report["notes"]
    split = json.loads((run_dir / "split.json").read_text())
    assert sum(len(v) for v in split["splits"].values()) == len(rows)  # every row, the first one too
