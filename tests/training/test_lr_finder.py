"""The learning-rate range test on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.config import load_config
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.training.lr_finder import PLOT, RESULT, centred_average, find_lr, suggest


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("lr") / "shapes", per_class=16, size=12)


def _cfg(folder, tmp_path, **train):
    cfg = tiny_config(folder, tmp_path / "unused-run", batch_size=8, **train)
    return load_config(cfg)


def test_sweep_records_losses_suggests_within_range_and_saves_the_plot(folder, tmp_path):
    result = find_lr(_cfg(folder, tmp_path), out_dir=tmp_path / "lr", end_lr=100.0)
    # 48 images, 70/20/10 split -> 34 train -> 5 batches an epoch: the sweep repeats the data to 30 steps
    assert result.planned_steps == 30
    n = len(result.lrs)
    assert 5 <= n <= 30 and len(result.losses) == len(result.smoothed) == n
    assert result.lrs[0] == pytest.approx(1e-7)
    ratios = np.diff(np.log(result.lrs))
    np.testing.assert_allclose(ratios, np.log(100.0 / 1e-7) / 29, rtol=1e-9)  # exponential steps
    assert 1e-7 <= result.suggestion <= 100.0 and 1e-7 <= result.min_loss_lr <= 100.0
    assert all(np.isfinite(result.losses[:3]))
    png = tmp_path / "lr" / PLOT
    assert result.plot_path == png and png.read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "lr" / RESULT).read_text())
    assert saved["suggestion"] == result.suggestion and len(saved["lrs"]) == n


def test_divergence_stops_the_sweep_early(folder, tmp_path):
    cfg = _cfg(folder, tmp_path, optimizer={"name": "sgd", "momentum": 0.0})
    result = find_lr(cfg, start_lr=1e-3, end_lr=1e6, num_steps=40)
    assert result.stopped_early and len(result.lrs) < 40
    last = result.losses[-1]
    assert not np.isfinite(last) or last > 4 * min(x for x in result.losses if np.isfinite(x))
    assert result.suggestion < result.lrs[-1]


def test_a_gentle_sweep_runs_to_the_end_and_says_so(folder, tmp_path):
    result = find_lr(_cfg(folder, tmp_path), start_lr=1e-6, end_lr=1e-4, num_steps=8, method="min_div_10")
    assert not result.stopped_early and len(result.lrs) == 8
    assert result.lrs[-1] == pytest.approx(1e-4)
    assert result.suggestion == pytest.approx(result.min_loss_lr / 10)
    assert any("did not diverge" in note for note in result.notes)
    assert result.plot_path is None  # no out_dir: nothing written


def test_each_recorded_loss_is_that_batch_s_loss_not_a_running_mean(tmp_path):
    import keras
    import tensorflow as tf

    from tfpilot.models import create_model
    from tfpilot.spec import InputSpec

    cfg = load_config({"model": {"name": "mlp", "params": {"hidden_units": [8]}}})
    model = create_model("mlp", InputSpec.image(4, 4, 1), 3, hidden_units=[8], dropout=0.0)
    rng = np.random.default_rng(0)
    a = (rng.integers(0, 255, (6, 4, 4, 1), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2]))
    b = (rng.integers(0, 255, (6, 4, 4, 1), dtype=np.uint8), np.array([2, 2, 2, 1, 1, 1]))
    stream = tf.data.Dataset.from_tensors(a).concatenate(tf.data.Dataset.from_tensors(b)).repeat()
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    expected = [float(loss_fn(y, model(x, training=False))) for x, y in (a, b)]
    assert abs(expected[0] - expected[1]) > 1e-3
    # learning rates far too small to move the weights: batch a, b, a, b ... keep their own losses
    result = find_lr(cfg, model=model, dataset=stream, num_steps=6, start_lr=1e-12, end_lr=1e-11, diverge=1e9)
    np.testing.assert_allclose(result.losses, expected * 3, rtol=1e-4)


def test_suggestion_rules_on_a_known_curve():
    lrs = np.geomspace(1e-6, 10, 71)
    drop = -np.tanh(2.0 * (np.log10(lrs) + 3))  # falls fastest at 1e-3
    blow = np.where(lrs > 0.1, 30 * (lrs - 0.1), 0.0)  # diverges above 0.1
    steepest, lowest, notes = suggest(lrs, 3 + drop + blow)
    assert steepest == pytest.approx(1e-3, rel=0.2) and 1e-2 < lowest <= 0.2 and notes == []
    flat_then_up, *_ = suggest(lrs, 1 + blow)
    assert flat_then_up < 0.2  # no descent at all: min-loss / 10 fallback, still below the blow-up
    np.testing.assert_allclose(centred_average(np.array([1.0, 3.0, np.nan, 5.0]), 3), [2.0, 2.0, np.nan, 5.0])
    with pytest.raises(ValueError, match="no finite loss"):
        suggest(lrs[:2], np.array([np.nan, np.inf]))


def test_bad_arguments_are_clear(folder, tmp_path):
    cfg = _cfg(folder, tmp_path)
    with pytest.raises(ValueError, match="method must be one of"):
        find_lr(cfg, method="valley")
    with pytest.raises(ValueError, match="0 < start_lr < end_lr"):
        find_lr(cfg, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="at least 5"):
        find_lr(cfg, num_steps=3)


def test_cli_lr_find_prints_the_suggestion(folder, tmp_path):
    out = tmp_path / "cli-lr"
    result = CliRunner().invoke(app, [
        "lr-find", "--dataset", str(folder), "--model", "mlp", "--batch-size", "8", "--steps", "12",
        "--set", "model.params={hidden_units: [16]}", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "suggested learning rate (steepest):" in result.output and "train.optimizer.learning_rate=" in result.output
    assert (out / PLOT).is_file() and (out / RESULT).is_file()
    bad = CliRunner().invoke(app, ["lr-find", "--dataset", str(folder), "--model", "mlp", "--method", "valley"])
    assert bad.exit_code == 2 and "method must be one of" in bad.output


def test_a_table_model_trains_at_the_rate_its_range_test_suggests(tmp_path):
    """learning_rate: auto on a 2-input, 2-head table model: the sweep's loss is the heads' weighted sum."""
    import tfpilot
    from tfpilot.testing.table import make_table

    table = make_table(tmp_path, rows=60, images=False)
    run = tfpilot.train({
        "data": {"dataset": str(table)},
        "features": {"inputs": ["title", "size"], "outputs": ["kind", {"name": "price", "loss_weight": 0.5}]},
        "model": {"name": "multitask", "params": {"hidden_units": [16]}},
        "train": {"epochs": 1, "batch_size": 8, "precision": "float32", "optimizer": {"learning_rate": "auto"},
                  "callbacks": {"tensorboard": False, "progress": "none"}},
        "output": {"run_dir": str(tmp_path / "run")},
    }, report=False)
    found = json.loads((run.path / RESULT).read_text())
    assert found["planned_steps"] == 30 and all(np.isfinite(found["losses"][:3]))
    assert np.isfinite(found["suggestion"]) and found["lrs"][0] <= found["suggestion"] <= found["lrs"][-1]
    assert run.metrics["learning_rate_found"] == found["suggestion"]
    assert float(run.history[0]["learning_rate"]) == pytest.approx(found["suggestion"], rel=1e-3)
    assert (run.path / PLOT).is_file()
    out = tmp_path / "cli"
    cli = CliRunner().invoke(app, ["lr-find", "--dataset", str(table), "--target", "kind", "--target", "price",
                                   "--steps", "10", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert "suggested learning rate (steepest):" in cli.output and (out / RESULT).is_file()
