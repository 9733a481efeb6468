"""Fixtures of the evaluation-report tests: one tiny trained CNN run (and its report) and one tiny
table model with an image column, shared by the whole session so each model trains once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfpilot.testing import make_image_folder, tiny_config


@pytest.fixture(scope="session")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-class run of a small CNN on 16x16 synthetic images (one corrupt file per
    class, so the data report has skipped files)."""
    from tfpilot.config import load_config
    from tfpilot.training import Trainer

    root = tmp_path_factory.mktemp("report_run")
    folder = make_image_folder(root / "shapes", per_class=40, size=16, corrupt=1)
    cfg = tiny_config(folder, root / "run", epochs=3)
    cfg["model"] = {"name": "fast_cnn", "params": {"filters": [8, 16], "dense_units": 16}}
    return Trainer(load_config(cfg)).fit().run_.path


@pytest.fixture(scope="session")
def report_html(report_run: Path) -> Path:
    """``report.html`` of :func:`report_run`."""
    from tfpilot.evaluation.report import report

    return report(report_run)


@pytest.fixture(scope="session")
def image_table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained table model: photo (image) + title (text) + size (number) -> kind (category) + price."""
    import tfpilot
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("image-table")
    cfg = {"data": {"dataset": str(make_table(root, rows=60, size=12))},
           "features": {"inputs": ["photo", "title", "size"], "outputs": ["kind", "price"]},
           "model": {"name": "multitask", "params": {"hidden_units": [16], "dropout": 0.0}},
           "train": {"epochs": 2, "batch_size": 16, "precision": "float32",
                     "callbacks": {"tensorboard": False, "progress": "none", "early_stopping": {"enabled": False}}},
           "output": {"run_dir": str(root / "run")}}
    return tfpilot.train(cfg, report=False).path
