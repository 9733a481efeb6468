"""``tfpilot train --dataset TABLE --target COL`` (model.name auto): the leaderboard of three candidates,
their Caruana ensemble and its members refit on train + val (``train.refit``, the default), then every
stage of that refit run in processes that did not train it: evaluate, report,
predict, export (the default ``all``: forests skip TFLite and ONNX) and verify by the CLI in a second
process, ``tfpilot serve`` of the ensemble's SavedModel and of the run in a third, ``tfpilot.load`` here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.tables.test_ydf_stages import ENV, STAGES, _finish, _start
from tests.tables.conftest import check_evaluate_and_predict, serving
from tfpilot.config import load_config
from tfpilot.training.distribute import free_ports

CANDIDATES = "{ydf_gbt: {num_trees: 30}, linear: {}, multitask: {hidden_units: [16]}}"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("leaderboard")
    table = make_table(root, rows=120, images=False)
    run = root / "run"
    log = root / "train.log"
    _finish(_start("train", "--dataset", str(table), "--target", "kind", "--target", "price", "--epochs", "4",
                   "--set", f"train.candidates={CANDIDATES}", "--set", "train.cv_folds=2",  # auto: 5 (test_folds.py)
                   "--run-dir", str(run), log=log), log)
    rows = root / "rows.csv"
    pd.read_csv(table).drop(columns=["kind", "price"]).head(5).to_csv(rows, index=False)
    stages = [["evaluate", ["evaluate", str(run)]], ["report", ["report", str(run)]],
              ["predict", ["predict", str(run), str(rows), "-f", "json"]],
              ["export", ["export", str(run)]], ["verify", ["verify", str(run), "--json"]]]
    with (root / "stages.log").open("wb") as out:
        proc = subprocess.run([sys.executable, "-c", STAGES, str(root), json.dumps(stages)], stdout=out,
                              stderr=subprocess.STDOUT, env=ENV, timeout=900)
    assert proc.returncode == 0, (root / "stages.log").read_text(errors="replace")[-3000:]
    return {"run": run, "table": table, "rows": rows, "root": root}


def test_the_leaderboard_lists_every_candidate_and_the_ensemble(board):
    run = board["run"]
    assert sorted(p.name for p in (run / "candidates").iterdir()) == ["linear", "multitask", "ydf_gbt"]
    for name in ("linear", "multitask", "ydf_gbt"):  # each candidate is an ordinary finished run on the same split
        cand = run / "candidates" / name
        assert (cand / "model.keras").is_file() and (cand / "metrics.json").is_file()
        assert (cand / "split.json").read_text() == (run / "split.json").read_text()
    lb = pd.read_csv(run / "leaderboard.csv")
    assert list(lb["candidate"])[-2:] == ["ensemble", "ensemble_refit"]
    assert sorted(lb["candidate"][:-2]) == ["linear", "multitask", "ydf_gbt"]
    assert {"val_kind_accuracy", "test_kind_accuracy", "val_price_rmse", "test_price_mae", "fit_s",
            "latency_ms_per_row", "weight"} <= set(lb.columns)
    metrics = json.loads((run / "metrics.json").read_text())
    # ~24 validation rows: the two heads' weights came from the folds' out-of-fold predictions (train.cv_folds)
    assert metrics["leaderboard"]["folds"]["folds"] == 2 and "out-of-fold" in metrics["leaderboard"]["method"]
    cv = lb[lb.candidate.isin(["linear", "multitask", "ydf_gbt"])][["cv_kind_accuracy", "cv_price_rmse"]]
    assert cv.notna().all().all() and cv.cv_kind_accuracy.max() > 0.9  # the title names the kind: the trees read it
    weights = metrics["leaderboard"]["weights"]
    assert sum(weights.values()) == pytest.approx(1.0) and max(weights.values()) > 0
    for name, w in weights.items():  # the csv's weights and figures are the runs' own
        row = lb[lb.candidate == name].iloc[0]
        assert row.weight == pytest.approx(w, abs=1e-4)
        own = json.loads((run / "candidates" / name / "metrics.json").read_text())["test"]["heads"]
        assert row.test_price_rmse == pytest.approx(own["price"]["rmse"], rel=1e-4)
    ens, refit = lb.iloc[-2], lb.iloc[-1]
    assert ens.test_kind_accuracy == pytest.approx(metrics["first_fit"]["test"]["heads"]["kind"]["accuracy"])
    assert refit.test_kind_accuracy == pytest.approx(metrics["test"]["heads"]["kind"]["accuracy"])
    # the members with a weight were trained again on train + val; the calibration is the first fit's
    used = sorted(name for name, w in weights.items() if w > 0)
    assert sorted(metrics["refit"]["members"]) == used == sorted(p.name for p in (run / "refit").iterdir())
    assert "before the refit" in metrics["refit"]["calibration"] and "kind" in metrics["calibration"]
    split = json.loads((run / "split.json").read_text())["splits"]
    for name in used:
        refit_split = json.loads((run / "refit" / name / "split.json").read_text())["splits"]
        assert sorted(refit_split["train"]) == sorted(split["train"] + split["val"])
    # the ensemble's heads beat their trivial baselines, as the candidates' best does
    test = metrics["test"]["heads"]
    assert test["price"]["mae"] < 0.8 * test["price"]["baseline_mae"]
    assert test["kind"]["accuracy"] > test["kind"]["baseline_accuracy"] + 0.2
    config = (run / "config.yaml").read_text()
    assert "name: auto" in config and "Caruana" in config
    # no --time-limit: the fast preset's budget, resolved in the run's config and its metrics
    saved = load_config(run / "config.yaml")
    assert saved.train.time_limit == 290.0 and "fast preset's budget" in saved.chosen["train.time_limit"]
    assert metrics["leaderboard"]["time_limit_s"] == 290.0
    out = " ".join((board["root"] / "train.log").read_text().split())
    assert "leaderboard" in out and "ensemble" in out and "latency_ms_per_row" in out


def test_evaluate_report_and_predict_read_the_ensemble_like_any_run(board):
    check_evaluate_and_predict(board, ("leaderboard", "head-price"))
    assert "ydf_gbt" in (board["run"] / "report.html").read_text()


def test_export_all_skips_what_forests_cannot_convert_and_verifies_the_rest(board):
    run = board["run"]
    out = " ".join((board["root"] / "export.log").read_text().split())
    assert "skipped tflite, tflite-fp16, tflite-dynamic, tflite-int8, onnx:" in out and "decision forests" in out
    assert sorted(p.name for p in (run / "export").iterdir() if not p.name.startswith(".")) == ["keras",
                                                                                              "saved_model"]
    verify = (board["root"] / "verify.log").read_text()
    report = json.loads(verify[verify.index("{"):])
    assert report["passed"] and [c["format"] for c in report["checks"]] == ["saved_model"]
    assert report["checks"][0]["heads"]["kind"]["agreement"] == 1.0


@pytest.fixture(scope="module")
def served(board) -> Iterator[str]:
    run, root = board["run"], board["root"]
    port, grpc = free_ports(2)
    with serving(str(run / "export" / "saved_model"), str(run), "--name", "ens_sm", "--name", "ens", "--port",
                 str(grpc), port=port, log=root / "serve.log") as url:
        yield url


@pytest.mark.parametrize("name", ["ens", "ens_sm"])
def test_serve_answers_as_the_loaded_ensemble(board, served, name):
    import tfpilot

    rows = pd.read_csv(board["table"]).dropna().head(4)
    instances = [{"title": t, "size": float(s), "colour": c} for t, s, c in zip(rows.title, rows["size"], rows.colour)]
    r = httpx.post(f"{served}/v1/models/{name}:predict", json={"instances": instances}, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expected = tfpilot.load(board["run"]).predict_raw(rows)
    np.testing.assert_allclose([p["kind"] for p in preds], expected["kind"], atol=1e-5)
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)
