"""tfpilot tune: 2 processes on one journal with a pruned trial; kill -9 mid-trial, then resume;
a bad space key refused before any trial. Digits (scikit-learn's, offline), a tiny MLP."""

import csv
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
import yaml
from optuna.trial import TrialState

from tfpilot.config import ConfigError, load_config
from tfpilot.config.tune import TuneConfig
from tfpilot.training.tune import resume_tune, tune

GOOD, BAD = 0.01, 1e-6  # digits learns in 3 epochs at 0.01; at 1e-6 it stays near chance
LR = "train.optimizer.learning_rate"


def base(epochs: int = 3) -> dict:
    return {"data": {"dataset": "digits"},
            "model": {"name": "mlp", "params": {"hidden_units": [32]}},
            "train": {"epochs": epochs, "batch_size": 32, "calibration": "none",
                      "precise_bn": {"enabled": False}, "mode_gap": {"enabled": False},
                      "callbacks": {"tensorboard": False, "progress": "none", "backup": False,
                                    "checkpoint": False, "early_stopping": {"enabled": False}}}}


def test_a_bad_space_key_is_refused_before_any_trial(tmp_path):
    out = tmp_path / "search"
    with pytest.raises(ConfigError, match=r"train.optimizer.learnig_rate.*Did you mean 'learning_rate'"):
        tune(base(), out, {"space": {"train.optimizer.learnig_rate": {"log_uniform": [1e-4, 1e-2]}}, "trials": 2})
    with pytest.raises(ConfigError, match=r"train.epochs = 0"):  # a bound the schema rejects
        tune(base(), out, {"space": {"train.epochs": {"int": [0, 3]}}, "trials": 2})
    with pytest.raises(ConfigError, match="never a training or test one"):
        tune(base(), out, {"space": {LR: {"choice": [GOOD]}}, "metric": "test_accuracy", "direction": "maximize"})
    assert not out.exists()


def test_two_processes_share_the_journal_and_the_pruner_stops_a_bad_trial(tmp_path):
    out = tmp_path / "search"
    # trials 0 and 1 (good) start at once, one per process; trial 2 (bad) is asked when one of them
    # has completed, so the median pruner (1 startup trial) has a completed curve to compare with
    search = TuneConfig.model_validate({"space": {LR: {"choice": [GOOD, BAD]}}, "trials": 4, "jobs": 2,
                                        "pruner": "median", "pruner_startup_trials": 1, "pruner_warmup_epochs": 1})
    result = tune(base(), out, search, enqueue=[{LR: GOOD}, {LR: GOOD}, {LR: BAD}])
    trials = result.study.trials
    assert len(trials) == 4
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both processes ran trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and trials[2].state == TrialState.PRUNED
    for t in pruned:
        step = max(t.intermediate_values)
        assert step < 2  # stopped before its last epoch
        median = statistics.median(c.intermediate_values[step] for c in complete)
        assert t.intermediate_values[step] < median
        assert (out / "trials" / f"{t.number:03d}" / "metrics.json").is_file()  # still a whole run
    assert trials[0].value > 0.8
    best = load_config(out / "best.yaml")
    assert best.train.optimizer.learning_rate == GOOD and best.output.run_dir is None and best.tune is None
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["state"] for r in rows] == [t.state.name for t in trials]
    page = (out / "tune.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "http" not in page.replace("http-equiv", "")
    assert list((out / "tensorboard").glob("trial-*/events.out.tfevents.*"))


def _wait_for(path, proc, seconds=300):
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_kill_mid_trial_then_resume_keeps_every_finished_trial_once(tmp_path):
    cfg = {**base(epochs=4), "tune": {"space": {LR: {"log_uniform": [3e-3, 3e-2]}}, "trials": 3,
                                      "pruner": "none"}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "search"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "tfpilot.cli.main", "tune", str(tmp_path / "cfg.yaml"),
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(out / "trials" / "001" / "history.csv", proc)  # trial 1 has finished an epoch of 4
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (out / "trials" / "001" / "metrics.json").exists(), "the kill came after trial 1 ended"
    finished_before = (out / "trials" / "000" / "metrics.json").stat().st_mtime

    result = resume_tune(out)
    trials = result.study.trials
    assert result.requeued == (1,)
    assert trials[0].state == TrialState.COMPLETE and trials[1].state == TrialState.FAIL
    rerun = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE and rerun[0].params == trials[1].params
    assert not [t for t in trials if t.user_attrs.get("retry_of") == 0]  # the finished trial is not rerun
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3 and len(trials) == 4
    assert (out / "trials" / "000" / "metrics.json").stat().st_mtime == finished_before
    assert load_config(out / "best.yaml").train.optimizer.learning_rate == result.study.best_trial.params[LR]
