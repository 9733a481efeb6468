"""bench/tables.py's parts that decide its figures: the baselines' rows and features, the
leaderboard's ensemble check and the goals (no TensorFlow; tiny synthetic tables)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tables.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tables", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _table(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    many = [f"v{i}" for i in rng.integers(0, 600, rows)]  # up to 600 values: ordinal codes, not categorical
    few = rng.choice(["a", "b", "c"], rows)
    days = pd.Timestamp("2017-01-01") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D")
    words = np.array([f"word{i}" for i in range(80)])  # a vocabulary larger than the 32 SVD components
    y = 3 * x + (few == "b") * 5.0 + rng.normal(scale=0.1, size=rows)
    return pd.DataFrame({"x": x, "many": many, "few": few, "Date": days.strftime("%d/%m/%Y"),
                         "note": [" ".join(rng.choice(words, 6)) for _ in range(rows)], "y": y})


def test_hgb_features_follow_the_datasets_readme(bench):
    table = bench.Table("t.csv", "y", "rmse", text=("note",), dates=("Date",))
    frame = _table(1000)
    fit, test = frame.iloc[:750], frame.iloc[750:]
    x_fit, x_test, mask = bench.hgb_matrices(fit, test, table, text_as_svd=False)
    assert list(x_fit.columns) == ["x", "many", "few", "Date", "note"]
    assert mask == [False, False, True, False, False]  # "note" has hundreds of values too
    assert len(set(fit["many"])) > 250  # more than 250 values: an ordinal number, not a category
    first = pd.Timestamp(pd.to_datetime(frame["Date"].iloc[0], format="%d/%m/%Y"))
    assert x_fit["Date"].iloc[0] == (first - pd.Timestamp("1970-01-01")).days
    unseen = sorted(set(test["many"]) - set(fit["many"]))
    assert unseen and x_test.loc[test["many"].isin(unseen), "many"].isna().all()  # unseen on fit rows -> missing
    x_fit, x_test, mask = bench.hgb_matrices(fit, test, table, text_as_svd=True)
    svd = [c for c in x_fit.columns if c.startswith("note_svd")]
    assert len(svd) == bench.SVD_COMPONENTS and "note" not in x_fit.columns and x_test.shape[1] == x_fit.shape[1]


def test_a_baseline_fits_exactly_the_recorded_rows(bench, tmp_path: Path):
    frame = _table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    split = {"splits": {"train": list(range(0, 250)), "val": list(range(250, 320)), "test": list(range(320, 400))}}
    (tmp_path / "split.json").write_text(json.dumps(split))
    table = bench.Table("t.csv", "y", "mae", text=("note",), dates=("Date",))
    both = bench.run_baseline("hgb", table, tmp_path / "t.csv", tmp_path / "split.json", "train+val")
    alone = bench.run_baseline("hgb", table, tmp_path / "t.csv", tmp_path / "split.json", "train")
    assert (both["fit_rows"], alone["fit_rows"], both["test_rows"], both["table_rows"]) == (320, 250, 80, 400)
    assert both["test"] < 0.5 * frame["y"].iloc[320:].sub(frame["y"].iloc[:320].mean()).abs().mean()


def test_the_ensemble_check_reads_the_leaderboard(bench, tmp_path: Path):
    (tmp_path / "leaderboard.csv").write_text("candidate,val_rmse,test_rmse,fit_s\nydf_gbt,10,12,1\nmlp,11,11.5,2\n"
                                              "linear,20,21,0.1\nensemble,9.5,11.8,0\n")
    board = bench.read_leaderboard(tmp_path, "rmse")
    assert [r["model"] for r in board if r["ensemble"]] == ["ensemble"]
    gap = bench.ensemble_gap(board, lower_is_better=True)
    assert gap["best_single_model"] == "mlp" and gap["worse_by"] == pytest.approx(0.3)
    (tmp_path / "leaderboard.csv").write_text("model,val_income_accuracy,test_income_accuracy\na,0.8,0.81\n"
                                              "ensemble,0.82,0.83\n")
    gap = bench.ensemble_gap(bench.read_leaderboard(tmp_path, "accuracy"), lower_is_better=False)
    assert gap["worse_by"] == 0.0 and gap["best_single"] == 0.81
    assert bench.read_leaderboard(tmp_path / "none", "rmse") is None


def test_goals(bench):
    def seeds(tf: list[float], hgb: list[float], wall: float = 100.0) -> dict:
        return {str(i): {"tfpilot": {"test": t, "wall_s": wall}, "hgb": {"test": h}, "ydf": {"test": h * 1.01}}
                for i, (t, h) in enumerate(zip(tf, hgb))}

    melbourne = bench.TABLES["melbourne"]
    assert bench.summarize("melbourne", melbourne, seeds([96.0, 96.0], [100.0, 100.0]))["holds"]
    assert not bench.summarize("melbourne", melbourne, seeds([98.0, 98.0], [100.0, 100.0]))["holds"]
    assert not bench.summarize("melbourne", melbourne, seeds([90.0, 90.0], [100.0, 100.0], wall=301))["holds"]
    pet = bench.TABLES["petfinder"]
    runs = seeds([0.40, 0.40], [0.395, 0.395])
    for s in runs.values():
        s["hgb_text"] = {"test": 0.385}
    assert not bench.summarize("petfinder", pet, runs)["holds"]  # ydf 0.399 + 0.01 > 0.40
    summary = bench.summarize("auto_mpg", bench.TABLES["auto_mpg"], seeds([2.0, 2.2], [2.1, 2.1]))
    assert summary["holds"] and summary["figures"]["tfpilot"]["sd"] == pytest.approx(np.std([2.0, 2.2], ddof=1))


def test_each_split_seed_is_another_split_and_each_is_stable_under_appended_rows():
    """The benchmark's 5 splits are `data.split_seed` 0-4: different test rows, each kept when rows are added."""
    from tfpilot.data.table_split import row_keys, split_rows

    frame, more = _table(300, seed=1), _table(40, seed=2)
    grown = pd.concat([frame, more], ignore_index=True)
    strata = np.zeros(len(grown), dtype=np.int64)
    tests = []
    for seed in range(5):
        before = split_rows(row_keys(frame), strata[: len(frame)], {"val": 0.2, "test": 0.1}, seed)
        after = split_rows(row_keys(grown), strata, {"val": 0.2, "test": 0.1}, seed)
        for name in ("train", "val", "test"):
            assert set(after[name][after[name] < len(frame)]) == set(before[name])  # no old row moved
        tests.append(frozenset(before["test"]))
    assert len(set(tests)) == 5 and max(len(a & b) for a in tests for b in tests if a is not b) < 0.5 * len(tests[0])
