"""Suite-wide test set-up: quiet TensorFlow, an isolated cache, a real-data marker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Archive extractions and decoded images go to a per-session cache, never the user's
    ~/.cache (session-scoped, so session fixtures that train use it too)."""
    with pytest.MonkeyPatch.context() as mp:
        if "TFPILOT_CACHE_DIR" not in os.environ:
            mp.setenv("TFPILOT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tfpilot-cache"))
        yield


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``$TFPILOT_DATA_DIR`` (the real datasets); CI and the Makefile set it to ../shared/datasets."""
    d = os.environ.get("TFPILOT_DATA_DIR")
    if not d or not Path(d).is_dir():
        pytest.fail("TFPILOT_DATA_DIR must point at the shared datasets (make test sets it)")
    return Path(d)


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of a small MLP on 16x16 RGB shapes (3 classes; train and test folders)."""
    from tfpilot.config import load_config
    from tfpilot.testing import make_image_folder, tiny_config
    from tfpilot.training import Trainer

    root = tmp_path_factory.mktemp("export-data")
    folder = make_image_folder(root / "shapes", per_class=20, splits=("train", "test"))
    cfg = tiny_config(folder, root / "run", epochs=4)
    cfg["model"]["params"] = {"hidden_units": [32]}
    cfg["train"]["optimizer"] = {"learning_rate": 0.01}
    return Trainer(load_config(cfg)).fit().run_.path
