"""Suite-wide test set-up: quiet TensorFlow, an isolated cache, a real-data marker, the longest
files first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The files whose tests (with their module fixtures) take longest, longest first: 60-250 s each
#: on one core of the slowest CI machine measured (Intel Xeon without bf16, 2026-12-07,
#: ``--durations``). ``make test`` deals whole files to its workers in collection order
#: (``--dist loadfile``), so these start first and the rest fill in beside them, instead of one
#: of them starting last while the other worker idles.
LONGEST_FIRST = (
    "tests/training/test_distributed.py",
    "tests/test_plugins.py",
    "tests/test_docs.py",
    "tests/training/test_fine_tune.py",
    "tests/training/test_distributed_mirrored.py",
    "tests/tables/test_leaderboard_stages.py",
    "tests/evaluation/test_report_browser.py",
    "tests/data/test_inspect_planted.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the tests of :data:`LONGEST_FIRST` first, in its order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    root = Path(str(config.rootpath))

    def key(item: pytest.Item) -> int:
        return rank.get(Path(str(item.path)).relative_to(root).as_posix(), len(rank))

    items.sort(key=key)  # stable: the order within a file, and of the other files, is kept


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
