"""train -> evaluate -> predict through the CLI on tiny synthetic data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfpilot.cli import common
from tfpilot.cli.main import app
from tfpilot.testing import make_image_folder

runner = CliRunner()

#: A narrow terminal: what `COLUMNS=40 tfpilot ...` (or a CI log) gives rich.
NARROW = 40


@pytest.fixture(scope="module")
def narrow_console():
    """Both consoles 40 columns wide for this module's commands, as with COLUMNS=40."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(common.console, "width", NARROW)
        mp.setattr(common.err_console, "width", NARROW)
        yield


def line_after(output: str, prefix: str) -> str:
    """The rest of the one output line that starts with ``prefix``."""
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, output
    return lines[0][len(prefix):]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, narrow_console):
    root = tmp_path_factory.mktemp("cli-run-directory-with-a-long-name")
    data = make_image_folder(root / "shapes", per_class=20, size=12)
    run_dir = root / "run"
    result = runner.invoke(app, [
        "train", "--dataset", str(data), "--model", "mlp", "--epochs", "4", "--batch-size", "16",
        "--run-dir", str(run_dir), "--set", "model.params={hidden_units: [32]}",
        "--set", "train.callbacks.tensorboard=false", "--set", "train.optimizer.learning_rate=0.01",
    ])
    assert result.exit_code == 0, result.output
    return data, run_dir, result.output


def test_train_prints_the_run_dir_and_accuracy(cli_run):
    data, run_dir, output = cli_run
    assert len(str(run_dir)) > NARROW  # the paths below would be cut in two if the lines wrapped
    assert Path(line_after(output, "run directory: ")) == run_dir
    assert Path(line_after(output, "report: ")) == run_dir / "report.html"
    assert float(line_after(output, "test accuracy: ").split()[0]) == \
        json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    assert (run_dir / "model.keras").is_file()


def test_evaluate_prints_and_saves_metrics(cli_run):
    _, run_dir, _ = cli_run
    result = runner.invoke(app, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert metrics["num_examples"] == trained["num_examples"] > 0  # the run's own test split
    assert metrics["accuracy"] == pytest.approx(trained["accuracy"])
    assert len(metrics["confusion_matrix"]) == 3 and sum(map(sum, metrics["confusion_matrix"])) == trained["num_examples"]
    table = runner.invoke(app, ["evaluate", str(run_dir)])
    assert "balanced_accuracy" in table.output and "per class" in table.output


def test_predict_files_and_folders_in_every_format(cli_run):
    data, run_dir, _ = cli_run
    one = sorted((data / "square").glob("*.png"))[0]
    res = runner.invoke(app, ["predict", str(run_dir), str(one), "--format", "json", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert rows[0]["input"] == str(one) and len(rows[0]["top_k"]) == 2
    assert rows[0]["label"] in ("circle", "square", "triangle")
    res = runner.invoke(app, ["predict", str(run_dir), str(data / "circle"), "--format", "csv"])
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 1 + 20
    res = runner.invoke(app, ["predict", str(run_dir), str(one)])
    assert res.exit_code == 0 and "prediction" in res.output


def test_user_errors_exit_2_with_a_message(cli_run, tmp_path):
    _, run_dir, _ = cli_run
    res = runner.invoke(app, ["train", "--dataset", "digits", "--set", "train.epochz=1"])
    assert res.exit_code == 2 and "Did you mean 'epochs'" in res.output
    res = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "nope.png")])
    assert res.exit_code == 2 and "does not exist" in res.output
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"definitely not a png")
    res = runner.invoke(app, ["predict", str(run_dir), str(bad)])
    assert res.exit_code == 2
    # one line, however narrow the terminal: the file, what is wrong and what to give instead,
    # and no TensorFlow internals ({{function_node ...}}, [Op:DecodeImage] name:)
    assert line_after(res.output, "error: ") == (
        f"{bad}: not a decodable image (Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, "
        "WebP required); give a JPEG, PNG, BMP or GIF file")
    for internal in ("{{", "function_node", "[Op:", "name:", "Traceback"):
        assert internal not in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert res.exit_code == 2 and "config.yaml" in line_after(res.output, "error: ")


def test_error_messages_are_printed_as_written(narrow_console, tmp_path):
    """Rich markup in a message ([brackets] in a path or a YAML list) is text, not style."""
    weird = tmp_path / "[bold]runs" / "x"
    res = runner.invoke(app, ["evaluate", str(weird)])
    assert res.exit_code == 2 and str(weird) in line_after(res.output, "error: ")


def test_models_and_datasets_listing():
    res = runner.invoke(app, ["models", "mnist*"])
    assert res.exit_code == 0 and "mnist_cnn" in res.output and "resnet" not in res.output
    res = runner.invoke(app, ["models", "nothing*"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["datasets"])
    assert res.exit_code == 0 and "fashion_mnist" in res.output and "digits" in res.output


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "tfpilot.cli.main", "version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "0.1.0"
