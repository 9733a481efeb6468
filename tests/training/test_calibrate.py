"""train.calibration: a temperature per class head, fitted on val, kept inside the model and its exports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tfpilot.metrics.calibration import fit_heads, fit_temperature, scale_probabilities
from tfpilot.models.calibration import SUFFIX, TemperatureScaling, temperatures


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sharpened(n: int, factor: float, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits), and probabilities ``factor`` times as sharp: the
    temperature that calibrates them is ``factor``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, classes))
    y = np.array([rng.choice(classes, p=p) for p in _softmax(logits)])
    return y, _softmax(factor * logits)


def test_the_fitted_temperature_undoes_known_over_and_under_confidence():
    for factor in (0.4, 2.5):
        y, probs = _sharpened(6000, factor)
        assert fit_temperature(y, probs, "category") == pytest.approx(factor, rel=0.08)
    # a binary head: P(positive) of a logit three times too small
    rng = np.random.default_rng(1)
    logit = rng.normal(0, 2, 6000)
    y = (rng.random(6000) < 1 / (1 + np.exp(-logit))).astype(int)
    assert fit_temperature(y, 1 / (1 + np.exp(-logit / 3)), "binary") == pytest.approx(1 / 3, rel=0.08)


def test_calibration_lowers_ece_and_nll_and_never_moves_a_prediction():
    y, probs = _sharpened(4000, 0.5, seed=2)
    (yt, pt) = _sharpened(4000, 0.5, seed=3)
    temps, record = fit_heads({"h": "category"}, ({"h": y}, {"h": probs}), ({"h": yt}, {"h": pt}))
    figs = record["h"]["test"]
    assert figs["ece_after"] < 0.03 < figs["ece_before"]
    assert figs["nll_after"] < figs["nll_before"]
    assert figs["accuracy_after"] == figs["accuracy_before"]
    np.testing.assert_array_equal(scale_probabilities(pt, temps["h"]).argmax(1), pt.argmax(1))
    # a binary head's 0.5 threshold stays where it is
    p = np.array([0.2, 0.49, 0.5, 0.51, 0.97])
    np.testing.assert_array_equal(scale_probabilities(p, 0.3, "binary") > 0.5, p > 0.5)


def test_the_layer_computes_the_numpy_function_and_round_trips(tmp_path: Path):
    import keras

    from tfpilot.runs import load_model

    probs = _sharpened(16, 1.0)[1].astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, TemperatureScaling("softmax", 1.7, name=f"label{SUFFIX}")(inputs))
    np.testing.assert_allclose(np.asarray(model(probs)), scale_probabilities(probs, 1.7), atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")  # safe_mode: the layer is a registered serializable class
    assert temperatures(loaded) == {"label": pytest.approx(1.7)}
    np.testing.assert_allclose(np.asarray(loaded(probs)), np.asarray(model(probs)), atol=1e-7)


def _table(path: Path, rows: int = 500) -> Path:
    """Three numbers -> a 3-class category, a binary flag and a price, all noisy functions of them."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "kind", "flag", "price"])
        for _ in range(rows):
            a, b, c = rng.normal(size=3)
            kind = "xyz"[int(np.argmax([2 * a, 2 * b, 0.5]) if rng.random() < 0.8 else rng.integers(3))]
            flag = "yes" if a - b + rng.normal(0, 0.7) > 0 else "no"
            w.writerow([round(a, 4), round(b, 4), round(c, 4), kind, flag, round(3 * a + c, 3)])
    return path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny table model with a category, a binary and a number head, trained with label
    smoothing (under-confident) and the default train.calibration."""
    import tfpilot

    root = tmp_path_factory.mktemp("calibrate")
    cfg = {"data": {"dataset": str(_table(root / "t.csv"))},
           "features": {"inputs": ["a", "b", "c"], "outputs": ["kind", "flag", "price"]},
           "model": {"name": "multitask", "params": {"hidden_units": [16], "dropout": 0.0}},
           "train": {"epochs": 6, "batch_size": 32, "precision": "float32", "label_smoothing": 0.3,
                     "callbacks": {"tensorboard": False, "progress": "none", "early_stopping": {"enabled": False}}},
           "output": {"run_dir": str(root / "run")}}
    return tfpilot.train(cfg, report=False).path


def test_training_fits_a_temperature_per_class_head_into_the_saved_model(table_run: Path):
    from tfpilot.runs import Run

    run = Run(table_run)
    record = run.metrics["calibration"]
    assert set(record) == {"kind", "flag"}  # class heads only: price is a number
    held = temperatures(run.load_model())
    for key, entry in record.items():
        assert held[key] == pytest.approx(entry["temperature"], rel=1e-5)
        assert entry["temperature"] < 0.9  # label smoothing left the heads under-confident: sharpen
        for split in ("val", "test"):
            assert entry[split]["accuracy_after"] == entry[split]["accuracy_before"]
        assert entry["val"]["nll_after"] <= entry["val"]["nll_before"]
    # metrics.json's test figures are the calibrated model's
    assert run.metrics["test"]["heads"]["kind"]["loss"] == pytest.approx(record["kind"]["test"]["nll_after"],
                                                                         abs=1e-3)


def _strip_temperatures(run_path: Path) -> None:
    """Make the run look like one trained before train.calibration: no temperature layers, no record."""
    import keras

    from tfpilot.runs import Run

    run = Run(run_path)
    model = run.load_model()
    outputs = {k: model.get_layer(k + SUFFIX).input if (k + SUFFIX) in [layer.name for layer in model.layers] else t
               for k, t in model.output.items()}
    keras.Model(model.input, outputs, name=model.name).save(run.model_path)
    metrics = run.metrics
    metrics.pop("calibration")
    run.file("metrics.json").write_text(json.dumps(metrics))


def test_evaluate_calibrate_refits_an_older_run_and_its_exports_carry_the_temperature(table_run: Path):
    from typer.testing import CliRunner

    from tfpilot.cli.main import app
    from tfpilot.export import export
    from tfpilot.export.verify import verify
    from tfpilot.runs import Run

    run = Run(table_run)
    trained = {k: v["temperature"] for k, v in run.metrics["calibration"].items()}
    _strip_temperatures(table_run)
    assert temperatures(run.load_model()) == {}

    result = CliRunner().invoke(app, ["evaluate", str(table_run), "--calibrate", "--json"])
    assert result.exit_code == 0, result.output
    refit = run.metrics["calibration"]
    assert json.loads(result.stdout)["calibration"] == refit  # --json: the fit beside the metrics
    assert {k: v["temperature"] for k, v in refit.items()} == pytest.approx(trained, rel=1e-3)
    assert refit["kind"]["previous_temperature"] is None and "refit_at" in refit["kind"]
    assert temperatures(run.load_model()) == pytest.approx(trained, rel=1e-3)
    # refitting a calibrated model starts from its outputs as trained: the same temperature again
    from tfpilot.evaluation.evaluate import recalibrate

    again = recalibrate(table_run)
    assert again["kind"]["temperature"] == pytest.approx(trained["kind"], rel=1e-3)
    assert again["kind"]["previous_temperature"] == pytest.approx(refit["kind"]["temperature"])

    # every export computes the calibrated model's outputs
    export(table_run, ["saved_model", "tflite"])
    report = verify(table_run)
    assert {c.format for c in report.checks} == {"saved_model", "tflite"}
    for check in report.checks:
        for key in ("kind", "flag"):
            assert check.heads[key]["agreement"] == 1.0
            assert check.heads[key]["max_prob_diff"] < 1e-4, (check.format, key, check.heads[key])
