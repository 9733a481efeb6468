"""Ensembles of runs: exact probability averaging, a complete run directory, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.config import load_config
from tfpilot.testing import make_image_folder, tiny_config
from tfpilot.runs import Run
from tfpilot.training import Trainer
from tfpilot.training.ensemble import ENSEMBLE, build_ensemble, ensemble


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two tiny MLP runs on the same data, differing only in their seed."""
    root = tmp_path_factory.mktemp("ensemble")
    folder = make_image_folder(root / "shapes", per_class=12, size=12)
    runs = []
    for seed in (1, 2):
        cfg = tiny_config(folder, root / f"run{seed}", seed=seed, epochs=2)
        cfg["train"]["callbacks"].update(checkpoint=False, backup=False)
        Trainer(load_config(cfg)).fit()
        runs.append(root / f"run{seed}")
    return root, folder, runs


@pytest.fixture(scope="module")
def ensemble_run(members):
    root, _, runs = members
    return ensemble(runs, root / "ensemble")


def _test_images(folder, n=12):
    from PIL import Image

    files = sorted(folder.rglob("*.png"))[:n]
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_the_ensemble_averages_the_members_probabilities_exactly(members, ensemble_run):
    _, folder, runs = members
    x = _test_images(folder)
    p1, p2 = (np.asarray(Run(r).load_model()(x, training=False)) for r in runs)
    assert not np.allclose(p1, p2)  # different seeds: different members
    model = ensemble_run.load_model(safe_mode=True)
    assert [layer.name for layer in model.layers] == ["image", "member_0", "member_1", "average"]
    np.testing.assert_allclose(np.asarray(model(x, training=False)), (p1 + p2) / 2, rtol=1e-6, atol=1e-7)


def test_scores_are_computed_like_the_trainer(members, ensemble_run):
    _, _, runs = members
    record = json.loads(ensemble_run.file(ENSEMBLE).read_text())
    for member, run_dir in zip(record["members"], runs):
        own = Run(run_dir).metrics
        assert member["run"] == str(run_dir.resolve())
        assert member["test_accuracy"] == pytest.approx(own["test"]["accuracy"], abs=1e-12)
        assert member["val_accuracy"] == pytest.approx(own["val"]["accuracy"], abs=1e-12)
    metrics = ensemble_run.metrics
    assert record["test_accuracy"] == metrics["test"]["accuracy"]
    assert record["best_member_test_accuracy"] == max(m["test_accuracy"] for m in record["members"])
    assert metrics["test"]["num_examples"] == Run(runs[0]).metrics["test"]["num_examples"]
    assert metrics["ensemble_of"] == 2 and metrics["params"] == sum(Run(r).metrics["params"] for r in runs)


def test_the_ensemble_is_a_complete_run(members, ensemble_run):
    from tfpilot.evaluation import evaluate
    from tfpilot.inference import Predictor

    _, folder, runs = members
    for name in ("model.keras", "labels.json", "config.yaml", "split.json", "data_report.json", "env.json",
                 "metrics.json", ENSEMBLE):
        assert ensemble_run.file(name).is_file(), name
    assert ensemble_run.finished and ensemble_run.class_names == Run(runs[0]).class_names
    assert ensemble_run.labels["model"] == "ensemble" and len(ensemble_run.labels["members"]) == 2
    assert evaluate(ensemble_run.path, save=False)["accuracy"] == pytest.approx(
        ensemble_run.metrics["test"]["accuracy"], abs=1e-12)
    predictions = Predictor.from_run(ensemble_run.path).predict(_test_images(folder, 2), top_k=1)
    assert len(predictions) == 2


def test_build_ensemble_renames_clashing_members():
    import keras

    def member():
        inputs = keras.Input((4,), name="x")
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(inputs),
                           name="same")

    a, b = member(), member()
    model = build_ensemble([a, b])
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), (np.asarray(a(x)) + np.asarray(b(x))) / 2, rtol=1e-6)
    assert {layer.name for layer in model.layers} >= {"member_0", "member_1"}
    with pytest.raises(ValueError, match="outputs differ in shape"):
        inputs = keras.Input((4,))
        build_ensemble([a, keras.Model(inputs, keras.layers.Dense(2)(inputs))])


def _variant(run_dir, tmp_path, name, edit_file, edit):
    copy = tmp_path / name
    shutil.copytree(run_dir, copy)
    path = copy / edit_file
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return copy


def test_members_that_disagree_are_clear_errors(members, tmp_path):
    _, _, (run1, run2) = members
    renamed = _variant(run2, tmp_path, "classes", "labels.json",
                       lambda d: d.update(class_names=["cat", "dog", "bird"]))
    with pytest.raises(ValueError, match=r"has classes \['cat', 'dog', 'bird'\].*same classes"):
        ensemble([run1, renamed], tmp_path / "out")
    bigger = _variant(run2, tmp_path, "input", "labels.json", lambda d: d["input"].update(shape=[32, 32, 3]))
    with pytest.raises(ValueError, match="must take the same input"):
        ensemble([run1, bigger], tmp_path / "out")
    resplit = _variant(run2, tmp_path, "split", "split.json", lambda d: d["splits"]["test"].pop())
    with pytest.raises(ValueError, match="tested on other examples"):
        ensemble([run1, resplit], tmp_path / "out")
    with pytest.raises(ValueError, match="listed twice"):
        ensemble([run1, run1], tmp_path / "out")
    with pytest.raises(ValueError, match="at least 2 runs"):
        ensemble([run1], tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a finished tfpilot run"):
        ensemble([run1, tmp_path / "nowhere"], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written when the members disagree


def test_cli_ensemble_and_refusal_to_overwrite(members, tmp_path):
    _, _, (run1, run2) = members
    runner = CliRunner()
    out = tmp_path / "cli-ensemble"
    result = runner.invoke(app, ["ensemble", str(run1), str(run2), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ensemble test accuracy:" in result.output and "best member" in result.output
    again = runner.invoke(app, ["ensemble", str(run1), str(run2), "--out", str(out)])
    assert again.exit_code == 2 and "already holds a finished run" in again.output


def _fork_members(members, tmp_path):
    """Copies of both member runs whose configs point at one copy of their dataset."""
    import yaml

    _, folder, runs = members
    data = shutil.copytree(folder, tmp_path / "shapes")
    forks = []
    for run in runs:
        fork = shutil.copytree(run, tmp_path / run.name, ignore=shutil.ignore_patterns("logs", "plots"))
        cfg = yaml.safe_load((fork / "config.yaml").read_text())
        cfg["data"]["dataset"] = str(data)
        (fork / "config.yaml").write_text(yaml.safe_dump(cfg))
        forks.append(fork)
    return data, forks


def test_the_ensemble_is_scored_on_the_recorded_split(members, tmp_path):
    from tfpilot.data import RecordedSplitError
    from tfpilot.testing import write_image

    data, (run1, run2) = _fork_members(members, tmp_path)
    rng = np.random.default_rng(1)
    for cls in ("circle", "square", "triangle"):  # files added after training are not the members' data
        for i in range(6):
            write_image(data / cls / f"added_{i}.png", rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
    recorded = json.loads((run1 / "split.json").read_text())
    out = ensemble([run1, run2], tmp_path / "ens")
    record = json.loads(out.file(ENSEMBLE).read_text())
    for split in ("val", "test"):
        assert out.metrics[split]["num_examples"] == len(recorded["splits"][split])
        for member, run in zip(record["members"], (run1, run2)):  # the examples each member was scored on
            assert member[f"{split}_accuracy"] == Run(run).metrics[split]["accuracy"]
    gone = recorded["splits"]["val"][0]
    (data / gone).unlink()
    with pytest.raises(RecordedSplitError, match=f"'val' split are missing or unreadable now: {gone}"):
        ensemble([run1, run2], tmp_path / "ens2")
    assert not (tmp_path / "ens2").exists()
