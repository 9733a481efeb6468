"""Training again into a run directory never destroys the run there (issue 25, point 2)."""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
from pathlib import Path

import keras
import pytest
import yaml
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.config import load_config
from tfpilot.testing import make_image_folder, tiny_config


class Interrupt(keras.callbacks.Callback):
    """Stops the process's training after ``epochs`` epochs, as a crash would (after the backup)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise RuntimeError("interrupted")


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _epochs(run: Path) -> list[int]:
    with (run / "history.csv").open(newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("rerun-data") / "shapes", per_class=12)


@pytest.fixture(scope="module")
def interrupted_template(folder, tmp_path_factory) -> Path:
    """A 5-epoch run interrupted after epoch 3: backup/epoch-0003, 3 history rows, no metrics.json."""
    from tfpilot.training import Trainer

    run = tmp_path_factory.mktemp("rerun") / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        Trainer(load_config(tiny_config(folder, run, epochs=5)), callbacks=[Interrupt(3)]).fit()
    assert (run / "backup" / "epoch-0003").is_dir() and not (run / "metrics.json").exists()
    assert _epochs(run) == [0, 1, 2]
    return run


@pytest.fixture
def interrupted(interrupted_template, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(interrupted_template, run)
    return run


def _train_args(folder: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", str(folder), "--model", "mlp", "--epochs", "5", "--batch-size", "16",
            "--run-dir", str(run), "--no-report", "--set", "model.params={hidden_units: [16]}",
            "--set", "train.callbacks.tensorboard=false", "--set", "train.callbacks.progress=none", *extra]


def test_training_again_into_an_interrupted_run_is_refused_and_names_resume(interrupted, folder):
    import tfpilot

    before = _digests(interrupted)
    with pytest.raises(FileExistsError) as info:
        tfpilot.train(tiny_config(folder, interrupted, epochs=5), report=False)
    assert f"tfpilot resume {interrupted}" in str(info.value) and "--overwrite" in str(info.value)
    assert _digests(interrupted) == before  # backup/epoch-0003 and the history are untouched

    result = CliRunner().invoke(app, _train_args(folder, interrupted))
    assert result.exit_code == 2 and "tfpilot resume" in result.output
    assert _digests(interrupted) == before


def test_resume_if_exists_continues_the_interrupted_run(interrupted, folder):
    result = CliRunner().invoke(app, _train_args(folder, interrupted, "--resume-if-exists"))
    assert result.exit_code == 0, result.output
    assert (interrupted / "metrics.json").is_file()
    assert _epochs(interrupted) == [0, 1, 2, 3, 4]  # the history continues after epoch 3


def test_overwrite_discards_the_interrupted_run(interrupted, folder):
    result = CliRunner().invoke(app, [*_train_args(folder, interrupted, "--overwrite"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert _epochs(interrupted) == [0]
    assert sorted(p.name for p in (interrupted / "backup").glob("epoch-*")) == ["epoch-0001"]


def test_overwrite_and_resume_if_exists_contradict(folder, tmp_path):
    with pytest.raises(ValueError, match="set one of them"):
        load_config(tiny_config(folder, tmp_path / "run"), overrides=["output.overwrite=true",
                                                                       "output.resume_if_exists=true"])


def test_a_runs_own_config_trains_a_new_run_beside_it(folder, tmp_path, caplog):
    import tfpilot

    run = tfpilot.train(tiny_config(folder, tmp_path / "run"), report=False).path
    before = _digests(run)
    assert yaml.safe_load((run / "config.yaml").read_text())["output"]["run_dir"] == str(run)
    with caplog.at_level(logging.INFO, logger="tfpilot"):
        again = tfpilot.train(run / "config.yaml", report=False)
    assert again.path == tmp_path / "run-2" and again.finished
    assert f"training a new run beside it, in {tmp_path / 'run-2'}" in caplog.text
    assert _digests(run) == before


def test_a_config_put_in_an_empty_run_dir_trains_there(folder, tmp_path):
    import tfpilot
    from tfpilot.config import save_config

    run = tmp_path / "exp"
    run.mkdir()
    save_config(load_config(tiny_config(folder, run)), run / "config.yaml")
    assert tfpilot.train(run / "config.yaml", report=False).path == run
