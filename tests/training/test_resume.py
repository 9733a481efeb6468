"""kill -9 during epoch 3 of a 5-epoch deterministic MNIST run, then resume: identical result."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras

import tfpilot.models.layers  # noqa: F401  (registers the layers the saved models use)
import numpy as np
import pytest

CHILD = Path(__file__).with_name("resume_child.py")


def _child(mode: str, run_dir: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(CHILD), mode, str(run_dir), str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_datasets):
    root = tmp_path_factory.mktemp("resume")
    straight, crashed = root / "straight", root / "crashed"
    done = _child("train", straight, shared_datasets)
    assert done.returncode == 0, done.stderr[-2000:]
    crash = _child("crash", crashed, shared_datasets)
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-2000:]
    return straight, crashed


def test_the_crash_left_a_complete_checkpoint_of_epoch_2(runs):
    _, crashed = runs
    latest = json.loads((crashed / "backup" / "latest.json").read_text())
    assert latest == {"dir": "epoch-0002"}
    state = json.loads((crashed / "backup" / "epoch-0002" / "state.json").read_text())
    assert state["epochs_done"] == 2
    assert not (crashed / "model.keras").exists() and not (crashed / "metrics.json").exists()
    keras.saving.load_model(crashed / "backup" / "epoch-0002" / "model.keras")  # loadable


def test_resume_ends_identical_to_the_uninterrupted_run(runs, shared_datasets):
    straight, crashed = runs
    res = _child("resume", crashed, shared_datasets)
    assert res.returncode == 0, res.stderr[-2000:]
    a = keras.saving.load_model(straight / "model.keras")
    b = keras.saving.load_model(crashed / "model.keras")
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(wa), np.asarray(wb), err_msg=wa.path)
    ma = json.loads((straight / "metrics.json").read_text())
    mb = json.loads((crashed / "metrics.json").read_text())
    assert ma["test"] == mb["test"]
    assert ma["epochs_run"] == mb["epochs_run"] == 5
    rows = list(csv.DictReader((crashed / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]


def test_an_interrupted_write_keeps_the_previous_checkpoint(tmp_path):
    """A leftover temp dir (a kill during a write) is ignored; latest.json still points at a whole one."""
    from tfpilot.training.resume import latest_checkpoint

    backup = tmp_path / "backup"
    (backup / "epoch-0001").mkdir(parents=True)
    (backup / "epoch-0001" / "state.json").write_text(json.dumps({"epochs_done": 1, "stage": 1, "callbacks": {}}))
    (backup / "latest.json").write_text(json.dumps({"dir": "epoch-0001"}))
    (backup / ".tmp-epoch-0002").mkdir()
    (backup / ".tmp-epoch-0002" / "model.keras").write_bytes(b"half a zip")
    found = latest_checkpoint(backup)
    assert found is not None and found[0].name == "epoch-0001" and found[1]["epochs_done"] == 1


def test_resuming_a_finished_run_is_refused(runs):
    from tfpilot.training import Trainer

    straight, _ = runs
    with pytest.raises(FileExistsError, match="already finished"):
        Trainer.resume(straight)
