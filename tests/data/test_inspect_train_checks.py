"""``tfpilot train``'s cheap checks: exact copies across splits are warned about (log and
data_report.json), and ``data.dedupe=drop`` removes them from the evaluation splits, recorded in
split.json so later commands rebuild the same splits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tfpilot.api import train
from tfpilot.config import load_config
from tfpilot.data import load_run_data
from tfpilot.testing import tiny_config
from tfpilot.testing.inspect_data import make_planted_image_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("dedupe")
    planted = make_planted_image_folder(root / "colours", per_class=12, test_per_class=4, copies=2, size=16)
    leaks = [copy for _, copy in planted["exact"] if copy.startswith("test/")]
    assert len(leaks) == 2
    return root / "colours", leaks


def _run(folder: Path, run_dir: Path, dedupe: str | None) -> Path:
    cfg = tiny_config(folder, run_dir)
    if dedupe:
        cfg["data"]["dedupe"] = dedupe
    return train(load_config(cfg), report=False).path


def test_copies_across_splits_are_warned_about(folder: tuple[Path, list[str]], tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    root, leaks = folder
    with caplog.at_level(logging.WARNING):
        run = _run(root, tmp_path / "run", None)
    notes = json.loads((run / "data_report.json").read_text())["notes"]
    note = next(n for n in notes if "exact copies" in n)
    assert "data.dedupe=drop" in note and "in test" in note
    assert any("exact copies" in r.getMessage() for r in caplog.records)
    split = json.loads((run / "split.json").read_text())
    assert set(leaks) <= set(split["splits"]["test"]) and "dedupe" not in split


def test_dedupe_drop_removes_them_and_records_it(folder: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, leaks = folder
    run = _run(root, tmp_path / "run", "drop")
    split = json.loads((run / "split.json").read_text())
    assert set(leaks) <= set(split["dedupe"]["dropped"]["test"])
    assert not set(leaks) & set(split["splits"]["test"])
    assert len(split["splits"]["test"]) == len(split["labels"]["test"]) == len(split["digests"]["test"])
    data = load_run_data(run)  # the recorded split rebuilds, fingerprints and all
    assert data.recorded and len(data.splits["test"]) == len(split["splits"]["test"])


def test_dedupe_is_validated() -> None:
    with pytest.raises(Exception, match="dedupe"):
        load_config({"data": {"dataset": "digits", "dedupe": "remove"}})
