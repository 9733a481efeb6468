"""tfpilot tune on the command line: user errors before any trial."""

import yaml
from typer.testing import CliRunner

from tfpilot.cli.main import app

runner = CliRunner()


def test_a_bad_space_key_is_one_error_line_and_nothing_runs(tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"train.optimizer.learning_rat": {"uniform": [0.001, 0.01]},
                                                         "model.params.dropout": {"uniform": [0, 0.5]}}))
    res = runner.invoke(app, ["tune", "--space", str(tmp_path / "space.yaml"), "--out", str(tmp_path / "s"),
                         "--set", "data.dataset=digits", "--set", "model.name=mlp"])
    assert res.exit_code == 2, res.output
    assert "learning_rat" in res.output and "Did you mean 'learning_rate'" in res.output
    assert not (tmp_path / "s").exists()


def test_resume_of_a_directory_without_a_search(tmp_path):
    res = runner.invoke(app, ["tune", "--resume", str(tmp_path)])
    assert res.exit_code == 2 and "not a tfpilot tune directory" in res.output


def test_a_metric_other_than_val_accuracy_needs_a_direction(tmp_path):
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"train.epochs": {"int": [1, 2]}}))
    res = runner.invoke(app, ["tune", "--space", str(tmp_path / "space.yaml"), "--out", str(tmp_path / "s"),
                              "--metric", "val_loss", "--set", "data.dataset=digits"])
    assert res.exit_code == 2 and "--direction" in res.output
