"""A YDF run through every stage, each in a fresh process: ``tfpilot train --model ydf_gbt`` on a
tiny table with a category and a number head, then evaluate, report, predict, export, verify,
serve (the run and its SavedModel, over REST) and ``tfpilot.load`` (in this test process, which
never trained it). The stages that read the run alone run side by side to keep CI short."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tfpilot.training.distribute import free_ports

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def _start(*args: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tfpilot.cli.main", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=ENV)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    proc.wait(timeout)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


@pytest.fixture(scope="module")
def ydf_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trained run, then evaluate, report, predict and export started together."""
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("ydf-run")
    table = make_table(root, rows=90, size=8)
    run = root / "run"
    log = root / "train.log"
    _finish(_start("train", "--dataset", str(table), "--target", "kind", "--target", "price", "--model", "ydf_gbt",
                   "--set", "model.params.num_trees=40", "--run-dir", str(run), log=log), log)
    rows = root / "rows.csv"
    pd.read_csv(table).head(5).to_csv(rows, index=False)
    stages = {"evaluate": ["evaluate", str(run)], "report": ["report", str(run)],
              "predict": ["predict", str(run), str(rows), "-f", "json"],
              "export": ["export", str(run), "-f", "keras", "-f", "saved_model"]}
    procs = {name: _start(*args, log=root / f"{name}.log") for name, args in stages.items()}
    for name, proc in procs.items():
        _finish(proc, root / f"{name}.log")
    return {"run": run, "table": table, "rows": rows, "root": root}


def test_training_writes_a_run_whose_heads_beat_their_baselines(ydf_run):
    run = ydf_run["run"]
    assert {"config.yaml", "split.json", "labels.json", "model.keras", "metrics.json", "history.csv"} <= {
        p.name for p in run.iterdir()}
    log = " ".join((ydf_run["root"] / "train.log").read_text().split())  # the console wraps lines
    assert "left out: photo (image)" in log and "early stopping on the validation split" in log
    test = json.loads((run / "metrics.json").read_text())["test"]["heads"]
    assert test["kind"]["accuracy"] > test["kind"]["baseline_accuracy"] + 0.3
    assert test["price"]["mae"] < 0.7 * test["price"]["baseline_mae"]
    history = pd.read_csv(run / "history.csv")
    assert {"kind_loss", "val_kind_loss", "price_loss", "val_price_loss", "loss", "val_loss"} <= set(history.columns)
    assert history["kind_loss"].iloc[-1] < history["kind_loss"].iloc[0]


def test_a_finished_run_is_not_trained_again(ydf_run):
    import tfpilot
    from tfpilot.errors import AlreadyExistsError

    config = tfpilot.load_config(ydf_run["run"] / "config.yaml")
    with pytest.raises(AlreadyExistsError, match="already holds a finished run"):
        tfpilot.train(config)


def test_evaluate_report_and_predict_read_the_run_like_any_other(ydf_run):
    run = ydf_run["run"]
    evaluated = json.loads((run / "evaluations" / "test.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert evaluated["heads"]["kind"]["accuracy"] == trained["heads"]["kind"]["accuracy"]
    assert evaluated["heads"]["price"]["mae"] == pytest.approx(trained["heads"]["price"]["mae"], rel=1e-5)
    html = (run / "report.html").read_text()
    assert 'id="head-kind"' in html and 'id="head-price"' in html and "training curves" in html
    out = (ydf_run["root"] / "predict.log").read_text()
    preds = json.loads(out[out.index("["):])
    import tfpilot

    expected = tfpilot.load(run).predict_raw(pd.read_csv(ydf_run["rows"]), base_dir=ydf_run["table"].parent)
    assert [p["kind"]["label"] for p in preds] == [["ant", "bee", "cat"][i] for i in expected["kind"].argmax(1)]
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)


def test_export_refuses_tflite_and_onnx_with_the_reason(ydf_run, tmp_path):
    from tfpilot.export import export
    from tfpilot.export.exporter import ExportError

    with pytest.raises(ExportError, match="decision forests.*TFLite and ONNX have no such ops"):
        export(ydf_run["run"], ["onnx", "tflite"], out_dir=tmp_path)


@pytest.fixture(scope="module")
def served(ydf_run) -> Iterator[str]:
    """``tfpilot verify`` of the export, beside ``tfpilot serve`` of the run and its SavedModel."""
    run, root = ydf_run["run"], ydf_run["root"]
    verify = _start("verify", str(run), log=root / "verify.log")
    port = free_ports(1)[0]
    log = root / "serve.log"
    proc = _start("serve", str(run), str(run / "export" / "saved_model"), "--name", "trees", "--name", "trees_sm",
                  "--host", "127.0.0.1", "--rest_api_port", str(port), log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        _finish(verify, root / "verify.log")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_saved_model_verifies_every_head(ydf_run, served):
    out = (ydf_run["root"] / "verify.log").read_text()
    rows = [line for line in out.splitlines() if "saved_model" in line and ("kind" in line or "price" in line)]
    assert len(rows) == 2 and all("ok" in r for r in rows), out[-3000:]


@pytest.mark.parametrize("name", ["trees", "trees_sm"])
def test_serve_answers_rest_predict_as_the_loaded_run(ydf_run, served, name):
    """The run (model.keras) and its SavedModel (YDF's ops loaded by the server) answer alike, for
    category inputs too (which arrive as bytes)."""
    import tfpilot

    table = ydf_run["table"]
    rows = pd.read_csv(table).dropna().head(4)
    instances = [{"photo": {"b64": base64.b64encode((table.parent / p).read_bytes()).decode()}, "title": t,
                  "size": float(s), "colour": c} for p, t, s, c in zip(rows.photo, rows.title, rows["size"], rows.colour)]
    r = httpx.post(f"{served}/v1/models/{name}:predict", json={"instances": instances}, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expected = tfpilot.load(ydf_run["run"]).predict_raw(rows, base_dir=table.parent)
    np.testing.assert_allclose([p["kind"] for p in preds], expected["kind"], atol=1e-5)
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)
    assert [p["kind_label"] for p in preds] == [["ant", "bee", "cat"][i] for i in expected["kind"].argmax(1)]
