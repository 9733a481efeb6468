"""Suite-wide test set-up: quiet TensorFlow, an isolated cache, a real-data marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Archive extractions go to a per-session cache, never the user's ~/.cache."""
    if "TFPILOT_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("TFPILOT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tfpilot-cache"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``$TFPILOT_DATA_DIR`` (the real datasets); CI and the Makefile set it to ../shared/datasets."""
    d = os.environ.get("TFPILOT_DATA_DIR")
    if not d or not Path(d).is_dir():
        pytest.fail("TFPILOT_DATA_DIR must point at the shared datasets (make test sets it)")
    return Path(d)
