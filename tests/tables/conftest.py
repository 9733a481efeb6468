"""A tiny trained two-input (image + text), two-output (category + number) table run, shared by the
end-to-end tests of train -> evaluate -> report -> predict -> export -> verify -> serve."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

#: The environment of the tfpilot processes these tests start.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def serving(*args: str, port: int, log: Path, timeout: float = 600) -> Iterator[str]:
    """``tfpilot serve ARGS`` in its own process, output to ``log``: its REST URL once ``/readyz``
    answers 200; stopped with SIGTERM (then killed) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tfpilot.cli.main", "serve", *args, "--host", "127.0.0.1",
                                 "--rest_api_port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def table_config(table: Path, run_dir: Path, **train: object) -> dict:
    """photo + title -> kind (category) + price (number), small encoders, float32 (exports match exactly)."""
    return {
        "data": {"dataset": str(table)},
        "features": {"inputs": ["photo", "title"],
                     "outputs": [{"name": "kind"}, {"name": "price", "loss": "huber", "loss_weight": 0.5}]},
        "model": {"name": "multitask", "params": {"hidden_units": [32], "dropout": 0.0}},
        "train": {"epochs": 8, "batch_size": 16, "precision": "float32",
                  "optimizer": {"learning_rate": 0.003},
                  "callbacks": {"tensorboard": False, "progress": "none", "early_stopping": {"enabled": False}},
                  **train},
        "output": {"run_dir": str(run_dir)},
    }


@pytest.fixture(scope="session")
def table_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfpilot.testing.table import make_table

    return make_table(tmp_path_factory.mktemp("table-data"), rows=90, size=16)


@pytest.fixture(scope="session")
def table_run(table_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tfpilot

    run = tfpilot.train(table_config(table_csv, tmp_path_factory.mktemp("table-run") / "run"), report=True)
    return run.path


def check_evaluate_and_predict(fixture: dict, html_ids: tuple[str, ...], base_dir: Path | None = None) -> None:
    """What the fresh-process stages wrote for ``fixture["run"]`` (a two-head run: kind, price):
    ``tfpilot evaluate``'s figures are the trained ones, the report has ``html_ids``, and
    ``tfpilot predict``'s rows (``fixture["root"] / "predict.log"``) are the loaded run's."""
    import json

    import numpy as np
    import pandas as pd

    import tfpilot

    run = fixture["run"]
    evaluated = json.loads((run / "evaluations" / "test.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert evaluated["heads"]["kind"]["accuracy"] == trained["heads"]["kind"]["accuracy"]
    assert evaluated["heads"]["price"]["mae"] == pytest.approx(trained["heads"]["price"]["mae"], rel=1e-5)
    html = (run / "report.html").read_text()
    assert all(f'id="{name}"' in html for name in html_ids), html_ids
    out = (fixture["root"] / "predict.log").read_text()
    preds = json.loads(out[out.index("["):])
    expected = tfpilot.load(run).predict_raw(pd.read_csv(fixture["rows"]), base_dir=base_dir)
    assert [p["kind"]["label"] for p in preds] == [["ant", "bee", "cat"][i] for i in expected["kind"].argmax(1)]
    np.testing.assert_allclose([p["price"] for p in preds], expected["price"], rtol=1e-5)

