"""A YDF run through every stage, in processes that did not train it: ``tfpilot train --model ydf_gbt``
on a tiny table with a category and a number head in one process; evaluate, report, predict, export
and verify by the CLI in a second; ``tfpilot serve`` of its SavedModel and of the run (REST) in a
third; ``tfpilot.load`` in this test process. (One process for the five CLI stages, not five, keeps
CI short: each process start imports TensorFlow.)"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.tables.conftest import ENV, check_evaluate_and_predict, serving
from tfpilot.training.distribute import free_ports


def _start(*args: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tfpilot.cli.main", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=ENV)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 900) -> str:
    proc.wait(timeout)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


#: Runs tfpilot commands one after the other in one process (that never trained the run), each
#: command's output to its own file: ``python -c STAGES OUT_DIR JSON([[name, argv], ...])``.
STAGES = """
import json, sys
from pathlib import Path
from typer.testing import CliRunner
from tfpilot.cli.main import app

out = Path(sys.argv[1])
for name, argv in json.loads(sys.argv[2]):
    result = CliRunner().invoke(app, argv)
    (out / f"{name}.log").write_text(result.stdout)
    if result.exit_code:
        sys.exit(f"tfpilot {' '.join(argv)} exited {result.exit_code}: {result.output[-2000:]} {result.exception!r}")
"""


@pytest.fixture(scope="module")
def ydf_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The run trained by ``tfpilot train`` in one process, then evaluated, reported, predicted,
    exported and verified by the CLI in another."""
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("ydf-run")
    table = make_table(root, rows=90, size=8)
    run = root / "run"
    log = root / "train.log"
    _finish(_start("train", "--dataset", str(table), "--target", "kind", "--target", "price", "--model", "ydf_gbt",
                   "--set", "model.params.num_trees=40", "--run-dir", str(run), log=log), log)
    rows = root / "rows.csv"
    pd.read_csv(table).head(5).to_csv(rows, index=False)
    stages = [["evaluate", ["evaluate", str(run)]], ["report", ["report", str(run)]],
              ["predict", ["predict", str(run), str(rows), "-f", "json"]],
              ["export", ["export", str(run), "-f", "keras", "-f", "saved_model"]],
              ["verify", ["verify", str(run), "--json"]]]
    with (root / "stages.log").open("wb") as out:
        proc = subprocess.run([sys.executable, "-c", STAGES, str(root), json.dumps(stages)], stdout=out,
                              stderr=subprocess.STDOUT, env=ENV, timeout=900)
    assert proc.returncode == 0, (root / "stages.log").read_text(errors="replace")[-3000:]
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
    check_evaluate_and_predict(ydf_run, ("head-kind", "head-price"), base_dir=ydf_run["table"].parent)
    assert "training curves" in (ydf_run["run"] / "report.html").read_text()


def test_export_refuses_tflite_and_onnx_with_the_reason(ydf_run, tmp_path):
    from tfpilot.export import export
    from tfpilot.export.exporter import ExportError

    with pytest.raises(ExportError, match="decision forests.*TFLite and ONNX have no such ops"):
        export(ydf_run["run"], ["onnx", "tflite"], out_dir=tmp_path)


@pytest.fixture(scope="module")
def served(ydf_run) -> Iterator[str]:
    """``tfpilot serve`` of the SavedModel export (loaded first: YDF's ops come from ``ensure_ops``,
    not from a Keras model with forests loaded before it) and of the run."""
    run, root = ydf_run["run"], ydf_run["root"]
    port, grpc = free_ports(2)
    with serving(str(run / "export" / "saved_model"), str(run), "--name", "trees_sm", "--name", "trees", "--port",
                 str(grpc), port=port, log=root / "serve.log") as url:
        yield url


def test_the_saved_model_verifies_every_head(ydf_run):
    out = (ydf_run["root"] / "verify.log").read_text()
    report = json.loads(out[out.index("{"):])
    assert report["passed"] and [c["format"] for c in report["checks"]] == ["saved_model"]
    heads = report["checks"][0]["heads"]
    assert heads["kind"]["agreement"] == 1.0 and heads["kind"]["max_prob_diff"] < 1e-5
    assert heads["price"]["max_abs_diff"] < 1e-3


@pytest.mark.parametrize("name", ["trees", "trees_sm"])
def test_serve_answers_rest_predict_as_the_loaded_run(ydf_run, served, name):
    """The run (model.keras) and its SavedModel (YDF's ops loaded by the server) answer alike, for
    category inputs too (which arrive as bytes)."""
    import tfpilot

    table = ydf_run["table"]
    rows = pd.read_csv(table).dropna().head(4)
    instances = [{"photo": {"b64": base64.b64encode((table.parent / p).read_bytes()).decode()}, "title": t,
                  "size": float(s), "colour": c}
                 for p, t, s, c in zip(rows.photo, rows.title, rows["size"], rows.colour)]
    r = httpx.post(f"{served}/v1/models/{name}:predict", json={"instances": instances}, timeout=60)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expected = tfpilot.load(ydf_run["run"]).predict_raw(rows, base_dir=table.parent)
    np.testing.assert_allclose([p["kind"] for p in preds], expected["kind"], atol=1e-5)
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)
    assert [p["kind_label"] for p in preds] == [["ant", "bee", "cat"][i] for i in expected["kind"].argmax(1)]
