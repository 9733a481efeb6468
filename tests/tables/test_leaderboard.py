"""The leaderboard's config: model.name auto on a table, presets, the time limit, each candidate's own
config; the CLI's --preset / --time-limit flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfpilot.config import load_config
from tfpilot.config.loader import ConfigError
from tfpilot.errors import UserError


def _table(**train: object) -> dict:
    return {"data": {"dataset": "t.csv"}, "features": {"outputs": ["y"]}, "train": dict(train)}


def test_a_table_with_no_model_named_keeps_auto_and_a_named_model_trains_alone():
    from tfpilot.config.table_flags import with_columns

    assert load_config(_table()).model.name == "auto"
    cfg = with_columns(load_config({"data": {"dataset": "auto_mpg"}}), ["mpg"], [])
    assert cfg.model.name == "auto"
    assert with_columns(load_config({"data": {"dataset": "auto_mpg"}}), ["mpg"], [], model="ydf_gbt",
                        model_given=True).model.name == "ydf_gbt"


def test_time_limits_are_read_as_durations_and_search_keys_need_the_leaderboard():
    assert load_config(_table(time_limit="10m")).train.time_limit == 600.0
    assert load_config(_table(time_limit="1.5h")).train.time_limit == 5400.0
    assert load_config(_table(time_limit=90)).train.time_limit == 90.0
    with pytest.raises(ConfigError, match="not a duration"):
        load_config(_table(time_limit="ten minutes"))
    with pytest.raises(ConfigError, match="above 0"):
        load_config(_table(time_limit=0))
    # auto (the default): the preset's budget; null: no limit
    assert [load_config(_table(**k)).train.time_limit_s for k in ({}, {"preset": "best"}, {"time_limit": None})] \
        == [290.0, 1800.0, None]
    for unset in ("auto", None):  # a named model's config, and older runs' config.yaml (time_limit: null)
        assert load_config({**_table(time_limit=unset), "model": {"name": "multitask"}}).model.name == "multitask"
    with pytest.raises(ConfigError, match="model.name 'multitask' trains one model: unset them"):
        load_config({**_table(preset="best"), "model": {"name": "multitask"}})
    with pytest.raises(ConfigError, match="no features section"):
        load_config({"data": {"dataset": "digits"}, "train": {"time_limit": 60}})
    with pytest.raises(ConfigError, match="not a table model"):
        load_config(_table(candidates={"mnist_cnn": {}}))
    with pytest.raises(ConfigError, match="num_tres"):
        load_config(_table(candidates={"ydf_gbt": {"num_tres": 3}}))


def test_presets_name_their_candidates_and_train_candidates_replace_them():
    from tfpilot.training.leaderboard import BENCHMARK_RANK1, candidates

    fast = candidates(load_config(_table()))
    assert [c.name for c in fast] == ["ydf_gbt_rank1", "ydf_gbt_bfg", "ydf_gbt_rank1_s05", "multitask", "linear"]
    assert fast[2].params == {**BENCHMARK_RANK1, "num_trees": 1000, "shrinkage": 0.05}
    assert fast[0].params == BENCHMARK_RANK1
    best = candidates(load_config(_table(preset="best")))
    assert {"ydf_rf", "ydf_gbt", "multitask", "linear"} <= {c.model for c in best} and len(best) > len(fast)
    assert best[0].params.items() >= BENCHMARK_RANK1.items() and best[0].params["num_trees"] == 1000
    chosen = candidates(load_config(_table(candidates={"linear": {}, "ydf_gbt": {"num_trees": 7}})))
    assert [(c.name, c.params) for c in chosen] == [("linear", {}), ("ydf_gbt", {"num_trees": 7})]
    assert chosen[0].train["train.epochs"] == 40  # the preset's recipe of that model


def test_a_candidate_config_is_an_ordinary_run_config(tmp_path: Path):
    from tfpilot.training.leaderboard import Candidate, candidate_config

    cfg = load_config(_table(preset="best", time_limit="5m"))
    nn = candidate_config(cfg, Candidate("multitask", "multitask", {"hidden_units": [8]}, {"train.epochs": 40}),
                          tmp_path / "candidates" / "multitask", seconds=100.0)
    assert (nn.model.name, nn.model.params, nn.train.epochs) == ("multitask", {"hidden_units": [8]}, 40)
    assert (nn.train.preset, nn.train.time_limit, nn.train.candidates) == ("fast", "auto", None)
    assert nn.output.run_dir == tmp_path / "candidates" / "multitask"
    assert "multitask candidate of the leaderboard" in nn.chosen["model.name"]
    forest = candidate_config(cfg, Candidate("ydf_gbt", "ydf_gbt"), tmp_path / "g", seconds=42.0)
    assert forest.model.params == {"maximum_training_duration_seconds": 42.0}
    given = load_config(_table(epochs=3))  # a key the user set is kept
    assert candidate_config(given, Candidate("linear", "linear", {}, {"train.epochs": 40}), tmp_path / "l",
                            None).train.epochs == 3


def test_a_time_limit_spent_before_the_first_candidate_skips_them_all(tmp_path: Path):
    from tfpilot.testing.table import make_table
    from tfpilot.training.leaderboard import fit_leaderboard

    table = make_table(tmp_path, rows=30, images=False)
    cfg = load_config({"data": {"dataset": str(table)}, "features": {"outputs": ["kind"]},
                       "train": {"time_limit": 1}, "output": {"run_dir": str(tmp_path / "run")}})
    with pytest.raises(UserError, match=r"no candidate .*ydf_gbt_rank1: the time limit \(1 s\) ran out"):
        fit_leaderboard(cfg)


def test_an_error_of_the_data_stops_the_leaderboard_once_not_once_a_candidate(tmp_path: Path, caplog):
    """A target the table lacks would fail every candidate alike: the leaderboard reads the table's
    columns before the first (for its image columns), and the user reads the error once, not five
    times in one message."""
    from tfpilot.testing.table import make_table
    from tfpilot.training.leaderboard import fit_leaderboard

    table = make_table(tmp_path, rows=30, images=False)
    cfg = load_config({"data": {"dataset": str(table)}, "features": {"outputs": ["no_such_column"]},
                       "output": {"run_dir": str(tmp_path / "run")}})
    with caplog.at_level("WARNING", logger="tfpilot"), pytest.raises(UserError) as err:
        fit_leaderboard(cfg)
    assert "no_such_column" in str(err.value) and "no candidate" not in str(err.value)
    assert str(err.value).count("no_such_column") == 1
    assert "could not be trained" not in caplog.text and not (tmp_path / "run").exists()  # no candidate tried


def test_forests_are_skipped_when_a_neural_option_is_set():
    from tfpilot.training.leaderboard import Candidate, _skip_reason

    cfg = load_config(_table(label_smoothing=0.1))
    assert "train.label_smoothing" in _skip_reason(cfg, Candidate("ydf_gbt", "ydf_gbt"))
    assert _skip_reason(cfg, Candidate("linear", "linear")) is None


def test_the_cli_passes_preset_and_time_limit_to_the_leaderboard(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    import tfpilot.api
    from tfpilot.cli.main import app
    from tfpilot.testing.table import make_table

    seen = {}

    def fake_train(cfg, report=True):
        seen["cfg"] = cfg
        return None  # as a non-chief worker: nothing to print

    monkeypatch.setattr(tfpilot.api, "train", fake_train)
    table = make_table(tmp_path, rows=20, images=False)
    result = CliRunner().invoke(app, ["train", "--dataset", str(table), "--target", "kind", "--preset", "best",
                                      "--time-limit", "10m", "--set", "train.cv_folds=3"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.model.name, cfg.train.preset, cfg.train.time_limit, cfg.train.cv_folds) == ("auto", "best", 600.0, 3)
    result = CliRunner().invoke(app, ["train", "--dataset", str(table), "--target", "kind", "--model", "multitask",
                                      "--time-limit", "10m"])
    assert result.exit_code != 0 and "trains one model" in result.output


def _replay(seconds: dict[str, float], todo: list, window: float) -> dict[str, float]:
    """What each candidate trains for, in ``todo``'s order, each stopping at its share of what is left."""
    from tfpilot.training.leaderboard import time_share

    left, got = window, {}
    for i, cand in enumerate(todo):
        got[cand.name] = min(seconds[cand.name], time_share(left, cand.cost, [c.cost for c in todo[i + 1:]]))
        left -= got[cand.name]
    return got


def test_time_shares_follow_the_candidates_costs_so_a_slow_machine_cuts_none_first():
    """The fast preset's first fits on melbourne (AMD EPYC with avx512_bf16, fd600b9) needed about
    22, 5, 54, 7 and 14 s of the 157 s the 290 s limit leaves them; on petfinder 20, 12, 36, 11 and
    13 s. Equal shares gave the costliest member, the rank1 trees at half shrinkage, 42 s on
    melbourne: it was cut on 3 of 5 splits while the two neural candidates left 60-80 s unused.
    Shares by cost cut none on either table; on a machine twice as slow (twice the seconds),
    every candidate keeps at least 60% of what it needs."""
    from dataclasses import replace

    from tfpilot.training.leaderboard import PRESETS, time_share

    fast = PRESETS["fast"]
    assert [c.name for c in fast] == ["ydf_gbt_rank1", "ydf_gbt_bfg", "ydf_gbt_rank1_s05", "multitask", "linear"]
    need, petfinder = [22.0, 5.0, 54.0, 7.0, 14.0], [20.0, 12.0, 36.0, 11.0, 13.0]

    def fits(seconds: list[float], costs: list[float]) -> list[float]:
        """What each candidate trains for, in the preset's order, at these costs."""
        got = _replay({c.name: s for c, s in zip(fast, seconds)},
                      [replace(c, cost=k) for c, k in zip(fast, costs)], 157.0)
        return [got[c.name] for c in fast]

    equal = fits(need, [1.0] * 5)
    assert equal[2] < need[2]  # what the runs' logs showed: the s05 trees stopped at their share
    costs = [c.cost for c in fast]
    assert fits(need, costs) == need and fits(petfinder, costs) == petfinder
    assert fits(petfinder, [1.0, 0.25, 2.0, 0.5, 0.5])[1] < petfinder[1]  # bfg at 0.25: cut on every split
    for table in (need, petfinder):
        slow = [2 * s for s in table]
        assert min(g / w for g, w in zip(fits(slow, costs), slow)) >= 0.6
    assert min(g / w for g, w in zip(fits([2 * s for s in need], [1.0] * 5), [2 * s for s in need])) < 0.5
    assert time_share(100.0, 1.0, []) == 100.0  # the last candidate gets what is left


def test_on_a_table_with_images_the_candidates_that_read_them_train_first_with_a_larger_budget():
    """fashion-9k's image + productDisplayName -> articleType (75 classes): the first fits without a
    limit took 40 (rank1 trees), 42 (best-first), 76 (rank1 at half shrinkage), 76 (multitask) and 145 s
    (linear). In the preset's order and costs within 290 s, the multitask network, the only strong reader
    of the photos (weight 0.72 in the unlimited ensemble), got 7 s: the forests, which leave images out,
    had taken the rest."""
    from tfpilot.config.schema import PRESET_TIME_LIMITS
    from tfpilot.training.leaderboard import (FIRST_FIT_SHARE, IMAGE_BUDGET, IMAGE_COST, PRESETS, RESERVE,
                                              _budgeted, for_images)

    fast = list(PRESETS["fast"])
    assert for_images(fast, []) == fast  # a table without images: the preset's order and costs
    ordered = for_images(fast, ["photo"])
    assert [c.name for c in ordered] == ["multitask", "linear", "ydf_gbt_rank1", "ydf_gbt_bfg", "ydf_gbt_rank1_s05"]
    cost = {c.name: c.cost for c in fast}
    assert [c.cost for c in ordered] == [cost["multitask"] * IMAGE_COST, cost["linear"] * IMAGE_COST,
                                         cost["ydf_gbt_rank1"], cost["ydf_gbt_bfg"], cost["ydf_gbt_rank1_s05"]]

    cfg = load_config(_table())
    assert _budgeted(cfg, []).train.time_limit == PRESET_TIME_LIMITS["fast"]
    doubled = _budgeted(cfg, ["photo"])
    assert doubled.train.time_limit == IMAGE_BUDGET * PRESET_TIME_LIMITS["fast"] == 580.0
    assert "image columns (photo)" in doubled.chosen["train.time_limit"]
    assert _budgeted(load_config(_table(time_limit="2m")), ["photo"]).train.time_limit == 120.0  # a given limit holds

    need = {"ydf_gbt_rank1": 40.0, "ydf_gbt_bfg": 42.0, "ydf_gbt_rank1_s05": 76.0, "multitask": 76.0, "linear": 145.0}
    window = (1 - RESERVE) * FIRST_FIT_SHARE
    before = _replay(need, fast, window * PRESET_TIME_LIMITS["fast"])
    assert before["multitask"] < 0.25 * need["multitask"]
    after = _replay(need, ordered, window * doubled.train.time_limit)
    assert after["multitask"] == need["multitask"] and after["linear"] > 0.8 * need["linear"]
    assert min(after.values()) > 0.3 * need["ydf_gbt_bfg"]  # the forests are cut, none skipped


def test_a_forest_stopped_by_its_time_limit_says_so(tmp_path: Path, caplog):
    from tfpilot.testing.table import make_table
    from tfpilot.training import Trainer

    table = make_table(tmp_path, rows=400, images=False)
    slow = {"num_trees": 100000, "shrinkage": 0.001, "maximum_training_duration_seconds": 0.3}
    for name, params in (("cut", slow), ("whole", {"num_trees": 5})):
        cfg = load_config({"data": {"dataset": str(table)}, "features": {"outputs": ["price"]},
                           "model": {"name": "ydf_gbt", "params": params},
                           "train": {"calibration": "none"}, "output": {"run_dir": str(tmp_path / name)}})
        caplog.clear()
        with caplog.at_level("INFO", logger="tfpilot"):
            Trainer(cfg).fit()
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("head price:"))
        if name == "cut":
            assert line.endswith("(stopped by its time limit of 0.3 s)"), line
        else:
            assert "of 5 trees" in line and line.endswith("(early stopping on the validation split)"), line
