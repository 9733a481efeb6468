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

    out = tmp_path / "pruned"
    r = prune(image_run, sparsity=0.5, epochs=1, out_dir=out)
    assert r.run_dir == out and r.sparsity == pytest.approx(0.5, abs=0.01)
    assert 0 < r.gzip_bytes_after < r.gzip_bytes_before
    assert 0.0 <= r.accuracy_after <= 1.0 and r.accuracy_before > 0.5
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pruning"]["target_sparsity"] == 0.5 and "accuracy" in metrics["test"]
    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert sparsity_of(prunable_kernels(model)) == pytest.approx(0.5, abs=0.01)
    exported = export(out, ["tflite"])
    assert tfpilot.load(exported.artifacts[0].path).class_names == ["circle", "square", "triangle"]
