"""Magnitude pruning for Keras 3: the callback, and tfpilot prune on a run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfpilot.training.prune import MagnitudePruning, polynomial_sparsity, prunable_kernels, prune, sparsity_of


def test_schedule_rises_polynomially_to_the_target():
    values = [polynomial_sparsity(s, 0.8, 10, 110) for s in (0, 10, 35, 60, 110, 500)]
    assert values[0] == values[1] == 0.0 and values[-2] == values[-1] == 0.8
    assert values[2] < values[3] < 0.8
    assert values[3] == pytest.approx(0.8 * (1 - 0.5**3))


def test_callback_prunes_every_kernel_and_keeps_them_pruned():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(64, 12)).astype("float32")
    y = np.arange(64) % 3
    pruning = MagnitudePruning(0.75, begin_step=0, end_step=10, frequency=2)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[pruning])  # 24 steps
    kernels = prunable_kernels(model)
    assert len(kernels) == 2 and pruning.sparsity_ == 0.75
    for k in kernels:
        assert np.mean(k.numpy() == 0) == pytest.approx(0.75, abs=0.01)
    assert sparsity_of(model.weights) < sparsity_of(kernels)  # biases are not pruned


def test_bad_settings_are_refused(image_run):
    with pytest.raises(ValueError, match="target_sparsity"):
        MagnitudePruning(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        prune(image_run, sparsity=0.0)


def test_prune_writes_a_run_that_loads_safely_and_exports(image_run, tmp_path):
    import keras

    import tfpilot
    from tfpilot.export import export

    from tfpilot.export.data import load_split
    from tfpilot.training.prune import gzip_weights_size

    out = tmp_path / "pruned"
    r = prune(image_run, sparsity=0.5, epochs=1, out_dir=out)
    assert r.run_dir == out and r.sparsity == pytest.approx(0.5, abs=0.01)
    # the saved model is pruned: every prunable kernel holds half zeros
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    kernels = prunable_kernels(model)
    assert kernels
    for k in kernels:
        assert np.mean(k.numpy() == 0) == pytest.approx(0.5, abs=0.01), k.path
    assert r.overall_sparsity == pytest.approx(sparsity_of(model.weights))
    assert r.gzip_bytes_after == gzip_weights_size(model) < r.gzip_bytes_before
    # the accuracies reported are the two models' on the run's recorded test split, recomputed here
    x, y = load_split(image_run, "test")
    before = float(np.mean(tfpilot.load(image_run).predict_proba(x).argmax(1) == y))
    after = float(np.mean(tfpilot.load(out).predict_proba(x).argmax(1) == y))
    assert r.accuracy_before == pytest.approx(before) and r.accuracy_after == pytest.approx(after)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pruning"]["target_sparsity"] == 0.5 and metrics["pruning"]["evaluated_on"] == "test"
    assert metrics["test"]["accuracy"] == pytest.approx(after) and metrics["test"]["num_examples"] == len(y)
    exported = export(out, ["tflite"])
    assert tfpilot.load(exported.artifacts[0].path).class_names == ["circle", "square", "triangle"]


def _fork_run(run_dir, tmp_path):
    """A copy of ``run_dir`` whose config points at a copy of its dataset (safe to change)."""
    import shutil

    import yaml

    run = shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("export", "logs", "plots"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    data = shutil.copytree(cfg["data"]["dataset"], tmp_path / "data")
    cfg["data"]["dataset"] = str(data)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run, data


def test_prune_fine_tunes_and_scores_on_the_recorded_split(image_run, tmp_path):
    from tfpilot.data import RecordedSplitError
    from tfpilot.runs import Run
    from tfpilot.testing import write_image

    run, data = _fork_run(image_run, tmp_path)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):  # files added after training are not the run's
        for cls in ("circle", "square", "triangle"):
            for i in range(5):
                pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                write_image(data / split / cls / f"added_{i}.png", pixels)
    recorded = json.loads((run / "split.json").read_text())
    r = prune(run, sparsity=0.5, epochs=1, out_dir=tmp_path / "pruned")
    assert r.accuracy_before == Run(run).metrics["test"]["accuracy"]  # the examples training scored
    metrics = json.loads((tmp_path / "pruned" / "metrics.json").read_text())
    assert metrics["test"]["num_examples"] == len(recorded["splits"]["test"]) == 60
    gone = recorded["splits"]["test"][3]
    (data / gone).unlink()
    with pytest.raises(RecordedSplitError, match=f"missing or unreadable now: {gone}"):
        prune(run, sparsity=0.5, epochs=1, out_dir=tmp_path / "pruned-again")


def test_prune_refuses_an_out_folder_it_did_not_write(image_run, tmp_path):
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not written by tfpilot prune"):
        prune(image_run, sparsity=0.5, epochs=1, out_dir=mine)
    assert (mine / "precious.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="its own directory"):
        prune(image_run, sparsity=0.5, epochs=1, out_dir=image_run)
    out = tmp_path / "pruned"
    prune(image_run, sparsity=0.5, epochs=1, out_dir=out, train_limit=30)
    (out / "stale.txt").write_text("from the first prune")
    again = prune(image_run, sparsity=0.25, epochs=1, out_dir=out, train_limit=30)  # an earlier prune: replaced
    assert again.target_sparsity == 0.25 and not (out / "stale.txt").exists()
    assert json.loads((out / "metrics.json").read_text())["pruning"]["target_sparsity"] == 0.25


def test_prune_a_run_trained_with_learning_rate_auto(image_run, tmp_path):
    import yaml

    from tfpilot.training.prune import fine_tune_learning_rate

    run, _ = _fork_run(image_run, tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["train"]["optimizer"]["learning_rate"] = "auto"
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="records no learning_rate_found: pass the fine-tuning rate"):
        prune(run, sparsity=0.5, epochs=1, out_dir=tmp_path / "p1")
    explicit = prune(run, sparsity=0.5, epochs=1, out_dir=tmp_path / "p1", train_limit=30, learning_rate=0.001)
    assert explicit.sparsity == pytest.approx(0.5, abs=0.01)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["learning_rate_found"] = 0.02  # what `learning_rate: auto`'s range test records
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert fine_tune_learning_rate("auto", metrics) == pytest.approx(0.002)
    found = prune(run, sparsity=0.5, epochs=1, out_dir=tmp_path / "p2", train_limit=30)
    assert found.sparsity == pytest.approx(0.5, abs=0.01)
