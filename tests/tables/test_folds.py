"""The leaderboard's out-of-fold weights (``train.cv_folds``): on a small table every candidate also
trains on each fold of train + val; the out-of-fold predictions weigh the ensemble and the folds'
median length sets each member's refit."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
import pytest

from tfpilot.config import load_config
from tests.tables.test_refit import leaderboard_config, planted_table


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tfpilot.training.leaderboard import fit_leaderboard

    root = tmp_path_factory.mktemp("folds")
    table, _ = planted_table(root, plant=False)
    cfg = load_config(leaderboard_config(table, root / "run", {"ydf_gbt": {"num_trees": 40}, "linear": {}},
                                         cv_folds="auto", epochs=6))
    return {"run": root / "run", "table": table, "result": fit_leaderboard(cfg)}


def _oof_from_saved_fold_runs(run, table, name):
    """Each train + val row predicted, in a fresh model load, by the saved fold run that validated on it."""
    import tfpilot

    frame = pd.read_csv(table)
    ids, values = [], []
    for fold in sorted((run / "folds" / name).iterdir()):
        val = json.loads((fold / "split.json").read_text())["splits"]["val"]
        ids += val
        values.append(np.asarray(tfpilot.load(fold).predict_raw(frame.iloc[val])["price"]).reshape(-1))
    order = np.argsort(ids)
    return np.asarray(ids)[order], np.concatenate(values)[order]


def test_every_train_and_val_row_is_predicted_by_the_fold_that_did_not_train_on_it(board):
    run = board["run"]
    split = json.loads((run / "split.json").read_text())["splits"]
    record = json.loads((run / "metrics.json").read_text())["leaderboard"]["folds"]
    assert record["folds"] == 5 and record["rows"] == len(split["train"]) + len(split["val"])
    for fold in range(5):
        manifest = json.loads((run / "folds" / "linear" / str(fold) / "split.json").read_text())
        assert manifest["cv_fold"] == [fold, 5] and manifest["splits"]["test"] == split["test"]
        assert not set(manifest["splits"]["val"]) & set(manifest["splits"]["train"])
    for entry in board["result"].entries:
        ids, saved = _oof_from_saved_fold_runs(run, board["table"], entry.name)
        assert sorted(ids.tolist()) == sorted(split["train"] + split["val"])
        np.testing.assert_allclose(saved, entry.oof.outputs["price"].reshape(-1), rtol=1e-4, atol=1e-3)


def test_the_weights_and_the_cv_figures_are_the_out_of_fold_ones(board):
    from tfpilot.training.ensemble import caruana_weights

    run, entries = board["run"], board["result"].entries
    frame = pd.read_csv(board["table"])
    outputs = []
    for entry in entries:
        ids, saved = _oof_from_saved_fold_runs(run, board["table"], entry.name)
        outputs.append({"price": saved})
    truth = {"price": frame["price"].to_numpy(np.float64)[ids]}
    weights, _ = caruana_weights(outputs, truth, {"price": "number"})
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["leaderboard"]["weights"] == {e.name: round(float(w), 4) for e, w in zip(entries, weights)}
    assert "out-of-fold predictions of 5 folds" in metrics["leaderboard"]["method"]
    lb = pd.read_csv(run / "leaderboard.csv").set_index("candidate")
    for entry, out in zip(entries, outputs):
        err = out["price"] - truth["price"]
        assert lb.loc[entry.name, "cv_rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-3)
        assert lb.loc[entry.name, "cv_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-3)
    assert "out-of-fold" in (run / "config.yaml").read_text()


def test_each_refit_trains_for_the_median_length_of_the_first_fit_and_the_folds(board):
    from tfpilot.training.leaderboard_refit import kept_fit

    run, result = board["run"], board["result"]
    metrics = json.loads((run / "metrics.json").read_text())
    for entry in result.entries:
        lengths = [kept_fit(entry.trainer), *entry.oof.kept]
        if "num_trees" in lengths[0]:
            trees = int(round(float(np.median([k["num_trees"]["price"] for k in lengths]))))
            assert metrics["refit"]["members"][entry.name]["num_trees"] == {"price": trees}
            assert load_config(run / "refit" / entry.name / "config.yaml").model.params["num_trees"] == trees
        elif entry.name in result.refits:
            epochs = int(round(float(np.median([k["epochs"] for k in lengths]))))
            assert load_config(run / "refit" / entry.name / "config.yaml").train.epochs == epochs


def test_no_time_for_the_folds_weighs_on_validation_and_says_so(board, tmp_path, caplog):
    from tfpilot.training.leaderboard import _out_of_fold

    entries = board["result"].entries
    cfg = entries[0].trainer.config.model_copy(update={"train": entries[0].trainer.config.train.model_copy(
        update={"cv_folds": 5})})
    before = [e.oof for e in entries]
    with caplog.at_level(logging.WARNING, logger="tfpilot.training.leaderboard"):
        _out_of_fold(cfg, tmp_path, entries, until=time.monotonic() - 1)
    assert "no out-of-fold weights: the time limit left 0 s" in caplog.text
    assert [e.oof for e in entries] == before and not (tmp_path / "folds").exists()


def test_cv_folds_are_checked_and_auto_folds_only_small_validation_splits():
    from tfpilot.config.loader import ConfigError
    from tfpilot.training.leaderboard_folds import fold_count

    table = {"data": {"dataset": "t.csv"}, "features": {"outputs": ["y"]}}
    cfg = load_config(table)
    assert [fold_count(cfg, v, 400) for v in (78, 499, 500, 0)] == [5, 5, 0, 0]
    assert (fold_count(cfg, 20, 100), fold_count(cfg, 20, 99)) == (5, 0)  # auto: 20 rows a fold
    assert fold_count(load_config({**table, "train": {"cv_folds": 3}}), 5000, 25000) == 3
    assert fold_count(load_config({**table, "train": {"cv_folds": 0}}), 78, 400) == 0
    with pytest.raises(ConfigError, match="2 or more"):
        load_config({**table, "train": {"cv_folds": 1}})
    with pytest.raises(ConfigError, match="trains one model: unset them"):
        load_config({**table, "model": {"name": "multitask"}, "train": {"cv_folds": 5}})


def test_a_fold_without_validation_rows_weighs_on_validation_and_says_so(board, tmp_path, caplog):
    from tfpilot.training.leaderboard import _out_of_fold

    entries = board["result"].entries
    cfg = entries[0].trainer.config.model_copy(update={"train": entries[0].trainer.config.train.model_copy(
        update={"cv_folds": 1000})})  # ~200 rows dealt into 1000 folds: the first folds hold none
    before = [e.oof for e in entries]
    with caplog.at_level(logging.WARNING, logger="tfpilot.training.leaderboard"):
        _out_of_fold(cfg, tmp_path, entries, until=None)
    assert "could not be trained on a fold (fold 1 of 1000 holds no rows of train + val" in caplog.text
    assert [e.oof for e in entries] == before
