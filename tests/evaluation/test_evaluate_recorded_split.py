"""Every reader of a run uses its recorded split (split.json), fails clearly when files are
missing, and ``evaluate`` writes beside metrics.json, never over it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.data import RecordedSplitError
from tfpilot.evaluation import evaluate
from tfpilot.evaluation.predictions import predict_split
from tfpilot.export.data import calibration_sample, load_split
from tfpilot.runs import Run
from tfpilot.testing import make_image_folder, tiny_config, write_image


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny MLP run on a 3-class folder of 8x8 images (20 per class, split by hash)."""
    from tfpilot.config import load_config
    from tfpilot.training import Trainer

    root = tmp_path_factory.mktemp("recorded")
    folder = make_image_folder(root / "shapes", per_class=20, size=8)
    cfg = tiny_config(folder, root / "run", epochs=2)
    cfg["train"]["optimizer"] = {"learning_rate": 0.01}
    cfg["train"]["callbacks"].update(checkpoint=False, backup=False)
    return folder, Trainer(load_config(cfg)).fit().run_.path


def _fork(trained, tmp_path):
    """A copy of the run whose config points at a copy of its dataset (safe to change)."""
    folder, run_dir = trained
    data = shutil.copytree(folder, tmp_path / "shapes")
    run = shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("logs", "plots", "report.html"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["dataset"] = str(data)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return data, run


def _recorded(run):
    return json.loads((run / "split.json").read_text())


def _add_files(data, per_class=10):
    """New images in every class folder: a re-derived split would differ in size and members."""
    rng = np.random.default_rng(3)
    for cls in ("circle", "square", "triangle"):
        for i in range(per_class):
            write_image(data / cls / f"added_{i:02d}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


def test_evaluate_uses_the_recorded_test_split_after_files_are_added(trained, tmp_path):
    data, run = _fork(trained, tmp_path)
    _add_files(data)
    result = evaluate(run, save=False)
    test = _recorded(run)["splits"]["test"]
    assert result["num_examples"] == len(test) and result["evaluated_on"]["recorded_split"] is True
    assert result["accuracy"] == Run(run).metrics["test"]["accuracy"]  # the very examples training scored
    assert result["evaluated_on"]["warnings"] == [] and result["evaluated_on"]["overlap"] == {}


def test_report_and_export_data_use_the_recorded_split(trained, tmp_path):
    data, run = _fork(trained, tmp_path)
    _add_files(data)
    recorded = _recorded(run)
    preds = predict_split(run, "test")  # what `tfpilot report` shows
    assert [str(p) for p in preds.rows.ids] == [str(data / rel) for rel in recorded["splits"]["test"]]
    np.testing.assert_array_equal(preds.y_true, recorded["labels"]["test"])
    x, y = load_split(run, "test")  # export's gate and verify data
    assert x.shape == (len(recorded["splits"]["test"]), 8, 8, 3)
    np.testing.assert_array_equal(y, recorded["labels"]["test"])
    calibration = calibration_sample(run, size=10_000)  # int8 calibration: all of the recorded train split
    assert len(calibration) == len(recorded["splits"]["train"])


def test_a_deleted_test_file_is_a_clear_error_everywhere(trained, tmp_path):
    data, run = _fork(trained, tmp_path)
    gone = _recorded(run)["splits"]["test"][0]
    (data / gone).unlink()
    for read in (lambda: evaluate(run, save=False), lambda: predict_split(run, "test"), lambda: load_split(run)):
        with pytest.raises(RecordedSplitError, match=rf"'test' split are missing or unreadable now: {gone}"):
            read()
    res = CliRunner().invoke(app, ["evaluate", str(run)])
    output = " ".join(res.output.split())
    assert res.exit_code == 2 and gone in output and "retrain on the current data" in output
    assert not (run / "evaluations").exists()


def test_evaluate_writes_beside_metrics_json_never_over_it(trained, tmp_path):
    _, run = _fork(trained, tmp_path)
    before = (run / "metrics.json").read_bytes()
    own = evaluate(run)
    other_folder = make_image_folder(tmp_path / "new_shapes", per_class=10, size=8, seed=9)
    other = evaluate(run, dataset=str(other_folder))
    assert (run / "metrics.json").read_bytes() == before
    assert Run(run).metrics["test"] == json.loads(before)["test"]
    other_name = other["evaluated_on"]["saved_to"].rsplit("/", 1)[-1].removesuffix(".json")
    assert other_name.startswith("new_shapes-") and other_name.endswith("-test")
    saved = Run(run).evaluations
    assert sorted(saved) == sorted(["test", other_name])
    assert saved["test"]["accuracy"] == own["accuracy"] and saved["test"]["evaluated_on"]["recorded_split"]
    assert saved[other_name]["evaluated_on"]["dataset"] == str(other_folder)
    assert saved[other_name]["num_examples"] == other["num_examples"]


def test_another_dataset_is_not_the_run_split_and_overlap_is_warned(trained, tmp_path):
    data, run = _fork(trained, tmp_path)
    recorded = _recorded(run)
    other = make_image_folder(tmp_path / "other", per_class=4, size=8, splits=("train", "test"), seed=11)
    reused = recorded["splits"]["train"][:5]  # training images, renamed, in the other data's test folder
    for i, rel in enumerate(reused):
        shutil.copy(data / rel, other / "test" / rel.split("/")[0] / f"reused_{i}.png")
    result = evaluate(run, dataset=str(other), save=False)
    source = result["evaluated_on"]
    assert source["recorded_split"] is False and result["num_examples"] == 12 + 5
    assert source["overlap"] == {"train": 5}
    assert "5 of the 17 evaluated examples are in the run's train split" in source["warnings"][0]
    res = CliRunner().invoke(app, ["evaluate", str(run), "--dataset", str(other)])
    output = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "not the run's recorded split" in output and "5 of the 17 evaluated examples are in the run's" in output
    same = evaluate(run, dataset=str(data) + "/.", save=False)  # the run's own folder, spelled differently
    assert same["evaluated_on"]["recorded_split"] is True
    assert same["num_examples"] == len(recorded["splits"]["test"])


def test_evaluating_the_training_split_warns(trained, tmp_path):
    _, run = _fork(trained, tmp_path)
    result = evaluate(run, split="train", save=False)
    assert result["num_examples"] == len(_recorded(run)["splits"]["train"])
    assert "training split" in result["evaluated_on"]["warnings"][0]


def test_a_run_without_split_json_is_split_afresh_and_says_so(trained, tmp_path):
    _, run = _fork(trained, tmp_path)
    (run / "split.json").unlink()
    result = evaluate(run, save=False)
    assert result["evaluated_on"]["recorded_split"] is False
    assert "no split.json" in result["evaluated_on"]["warnings"][0]
