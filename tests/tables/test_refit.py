"""The leaderboard's refit (``train.refit``): once the weights are chosen on validation, the members
train again on train + val through the one fit path, for the trees / epochs their first fit kept.

A planted rule tells whether a model saw the validation rows: the table is split by an id column,
so the rows' content can be changed after the split is known, and only the validation rows get the
colour ``zzz`` and a price 300 higher."""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfpilot.config import load_config

OFFSET = 300.0  # the planted rule: colour zzz (validation rows only) costs this much more


def planted_table(root: Path, rows: int = 160, plant: bool = True) -> tuple[Path, list[int]]:
    """``id,size,colour,price`` split by ``id``; the validation rows' colour is ``zzz`` and their price
    ``OFFSET`` higher (``plant``). Returns the CSV and the validation rows' numbers."""
    from tfpilot.data.table import prepare_table

    rng = np.random.default_rng(0)
    size = np.round(rng.uniform(0.5, 3.0, rows), 2)
    colour = rng.choice(["red", "green", "blue"], rows)
    price = 10 * size + np.select([colour == "green", colour == "blue"], [5.0, 10.0], 0.0) + rng.normal(0, 0.3, rows)
    path = root / "planted.csv"

    def write(colours: np.ndarray, prices: np.ndarray) -> None:
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["id", "size", "colour", "price"])
            w.writerows([f"r{i}", size[i], colours[i], round(float(prices[i]), 3)] for i in range(rows))

    write(colour, price)
    cfg = load_config({"data": {"dataset": str(path), "id_column": "id"}, "features": {"outputs": ["price"]}})
    val = [int(i) for i in prepare_table(cfg).splits["val"].ids]
    if not plant:
        return path, val
    colour, price = colour.astype(object), price.copy()
    colour[val], price[val] = "zzz", price[val] + OFFSET
    write(colour, price)
    assert sorted(int(i) for i in prepare_table(cfg).splits["val"].ids) == sorted(val)  # split by id: unmoved
    return path, val


def leaderboard_config(table: Path, run: Path, candidates: dict, **train: object) -> dict:
    return {"data": {"dataset": str(table), "id_column": "id"}, "features": {"outputs": ["price"]},
            "train": {"candidates": candidates, "precision": "float32", "batch_size": 32, "cv_folds": 0,
                      "callbacks": {"tensorboard": False, "progress": "none"}, **train},
            "output": {"run_dir": str(run)}}


def rule_gap(model_dir: Path) -> float:
    """How much more a model prices a zzz row than the same row in red."""
    import tfpilot

    rows = pd.DataFrame({"id": ["a", "b"], "size": [2.0, 2.0], "colour": ["zzz", "red"]})
    price = np.asarray(tfpilot.load(model_dir).predict_raw(rows)["price"]).reshape(-1)
    return float(price[0] - price[1])


@pytest.fixture(scope="module")
def forest_board(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tfpilot.training.leaderboard import fit_leaderboard

    root = tmp_path_factory.mktemp("refit-forest")
    table, val = planted_table(root)
    cfg = load_config(leaderboard_config(table, root / "run", {"ydf_gbt": {"num_trees": 80}}))
    result = fit_leaderboard(cfg)
    return {"run": root / "run", "val": val, "result": result, "table": table}


def test_a_refit_forest_trains_on_the_validation_rows_with_the_trees_early_stopping_kept(forest_board):
    from tfpilot.models.ydf_layers import forest_heads
    from tfpilot.training.ydf_fit import kept_iterations

    run, val = forest_board["run"], forest_board["val"]
    first, refit = run / "candidates" / "ydf_gbt", run / "refit" / "ydf_gbt"
    first_split = json.loads((first / "split.json").read_text())["splits"]
    refit_split = json.loads((refit / "split.json").read_text())
    assert sorted(refit_split["splits"]["train"]) == sorted(first_split["train"] + val)
    assert "val" not in refit_split["splits"] and refit_split["train_includes_val"] is True
    assert refit_split["splits"]["test"] == first_split["test"]

    (first_layer,) = forest_heads(forest_board["result"].entries[0].trainer.model_)
    trees = kept_iterations(first_layer)
    assert 0 < trees < 80  # early stopping on val kept fewer than the 80 asked for
    params = load_config(refit / "config.yaml").model.params
    assert params["num_trees"] == trees and params["early_stopping"] == "NONE" and params["validation_ratio"] == 0
    (refit_layer,) = forest_heads(forest_board["result"].refits["ydf_gbt"].trainer.model_)
    assert refit_layer.forest.num_trees() == trees
    assert refit_layer.forest.validation_loss() is None  # YDF held no training rows out
    # the planted rule, only in the validation rows: the refit member learned it, the first fit could not
    assert rule_gap(refit) > OFFSET / 3
    assert abs(rule_gap(first)) < OFFSET / 10


def test_the_run_exports_the_refit_ensemble_and_keeps_the_first_fits_figures(forest_board):
    run = forest_board["run"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert rule_gap(run) > OFFSET / 3  # RUN's model is the refit ensemble
    refit = metrics["refit"]
    assert refit["enabled"] and refit["kept_first_fit"] == {}
    assert metrics["leaderboard"]["folds"] is None and not (run / "folds").exists()  # train.cv_folds 0: weighed on val
    first_train = json.loads((run / "split.json").read_text())["splits"]["train"]
    assert refit["members"]["ydf_gbt"]["train_rows"] == refit["rows"] == len(first_train) + len(forest_board["val"])
    assert metrics["out_of_sample"]["test"] is True and metrics["out_of_sample"]["val"] is False
    assert metrics["out_of_sample"]["first_fit.val"] is True
    lb = pd.read_csv(run / "leaderboard.csv")
    assert list(lb.candidate) == ["ydf_gbt", "ensemble", "ensemble_refit"]
    ens, refit_row = lb.iloc[1], lb.iloc[2]
    assert ens.test_rmse == pytest.approx(metrics["first_fit"]["test"]["heads"]["price"]["rmse"], rel=1e-5)
    assert ens.val_rmse == pytest.approx(metrics["first_fit"]["val"]["heads"]["price"]["rmse"], rel=1e-5)
    assert refit_row.test_rmse == pytest.approx(metrics["test"]["heads"]["price"]["rmse"], rel=1e-5)
    assert np.isnan(refit_row.val_rmse)  # in sample: left out
    labels = json.loads((run / "labels.json").read_text())
    assert labels["members"] == [str((run / "refit" / "ydf_gbt").resolve())]
    assert "trained again on train + val" in (run / "config.yaml").read_text()


def test_no_time_left_keeps_the_first_fits_and_says_so(forest_board, tmp_path, caplog):
    from tfpilot.training.leaderboard_refit import refit_members

    result = forest_board["result"]
    with caplog.at_level(logging.WARNING, logger="tfpilot.training.leaderboard"):
        done, kept = refit_members(tmp_path, result.entries, result.weights, deadline=time.monotonic() - 1)
    assert done == {} and "time limit left 0 s" in kept["ydf_gbt"]
    assert "ydf_gbt keeps its first fit (no refit)" in caplog.text
    assert not (tmp_path / "refit").exists()


def test_a_refit_neural_member_trains_the_epochs_its_first_fit_kept(tmp_path):
    import tfpilot
    from tfpilot.training.leaderboard import fit_leaderboard

    table, val = planted_table(tmp_path, plant=False)
    cfg = load_config(leaderboard_config(table, tmp_path / "run", {"multitask": {"hidden_units": [16]}}, epochs=30,
                                         optimizer={"learning_rate": 0.01},
                                         callbacks={"tensorboard": False, "progress": "none",
                                                    "early_stopping": {"patience": 3}}))
    result = fit_leaderboard(cfg)
    first = pd.read_csv(tmp_path / "run" / "candidates" / "multitask" / "history.csv")
    best = int(first.val_loss.to_numpy().argmin()) + 1
    refit = tmp_path / "run" / "refit" / "multitask"
    history = pd.read_csv(refit / "history.csv")
    assert 1 < best <= len(first)
    assert len(history) == best == load_config(refit / "config.yaml").train.epochs
    assert history.val_loss.isna().all()  # nothing held out (Keras writes NA)
    assert result.refits["multitask"].kept == {"epochs": best, "epochs_run": len(first)}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["refit"]["members"]["multitask"]["epochs"] == best
    assert json.loads((refit / "metrics.json").read_text())["epochs_run"] == best
    split = json.loads((refit / "split.json").read_text())["splits"]
    assert set(val) <= set(split["train"])  # its preprocessing was adapted on these rows too
    assert metrics["test"]["heads"]["price"]["mae"] < 0.5 * metrics["test"]["heads"]["price"]["baseline_mae"]
    rows = pd.DataFrame({"id": ["x"], "size": [1.0], "colour": ["red"]})
    assert np.isfinite(tfpilot.load(tmp_path / "run").predict_raw(rows)["price"]).all()


def test_refit_false_is_the_ensemble_of_the_first_fits(tmp_path):
    from tfpilot.training.leaderboard import fit_leaderboard

    table, _ = planted_table(tmp_path)
    cfg = load_config(leaderboard_config(table, tmp_path / "run", {"ydf_gbt": {"num_trees": 30}}, refit=False))
    result = fit_leaderboard(cfg)
    run = tmp_path / "run"
    assert not (run / "refit").exists() and result.refits == {}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["refit"] == {"enabled": False} and "first_fit" not in metrics
    assert metrics["out_of_sample"]["val"] is True
    lb = pd.read_csv(run / "leaderboard.csv")
    assert list(lb.candidate) == ["ydf_gbt", "ensemble"]
    assert lb.iloc[1].test_rmse == pytest.approx(metrics["test"]["heads"]["price"]["rmse"], rel=1e-5)
    assert abs(rule_gap(run)) < OFFSET / 10


def test_refit_keys_are_checked():
    from tfpilot.config.loader import ConfigError

    table = {"data": {"dataset": "t.csv"}, "features": {"outputs": ["y"]}}
    assert load_config(table).train.refit is True
    with pytest.raises(ConfigError, match="trains one model: unset them"):
        load_config({**table, "model": {"name": "multitask"}, "train": {"refit": False}})
    with pytest.raises(ConfigError, match="data.train_on_val folds a table's validation rows"):
        load_config({"data": {"dataset": "digits", "train_on_val": True}})
    assert load_config({**table, "data": {"dataset": "t.csv", "train_on_val": True},
                        "model": {"name": "ydf_gbt"}}).data.train_on_val
