"""A tiny trained two-input (image + text), two-output (category + number) table run, shared by the
end-to-end tests of train -> evaluate -> report -> predict -> export -> verify -> serve."""

from __future__ import annotations

from pathlib import Path

import pytest


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
