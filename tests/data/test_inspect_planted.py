"""``tfpilot inspect`` on an image folder and a text table with planted problems: exact
duplicates, near-duplicates (resized or re-encoded images; texts changed in case, punctuation or
a word or two), cross-split copies and 5% flipped labels. For each planted kind, recall >= 0.9
and at most twice the planted count flagged; clean data shows no cross-split leak."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tfpilot.api import InspectOptions, inspect
from tfpilot.config import load_config
from tfpilot.testing.inspect_data import make_planted_image_folder, make_planted_text_table


def _pairs(found: dict[str, Any], kind: str) -> set[frozenset[str]]:
    return {frozenset((p["a"]["id"], p["b"]["id"])) for p in found["duplicates"][kind]["pairs"]}


def _check(found: dict[str, Any], kind: str, planted: list[tuple[str, str]]) -> None:
    wanted = {frozenset(p) for p in planted}
    got = _pairs(found, kind)
    assert len(wanted & got) >= 0.9 * len(wanted), (kind, wanted - got)
    assert found["duplicates"][kind]["count"] <= 2 * len(wanted), (kind, got - wanted)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("inspect-images")
    planted = make_planted_image_folder(root / "colours", per_class=60, test_per_class=15, copies=6, broken=2)
    cfg = load_config(None, dataset=str(root / "colours"), overrides=["train.batch_size=32"])
    found = inspect(cfg, root / "out", InspectOptions(folds=3, epochs=15, model="mlp", workers=2))
    return found, planted, root / "out"


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    root = tmp_path_factory.mktemp("inspect-texts")
    planted = make_planted_text_table(root / "news.csv", per_class=80, copies=8)
    found = inspect(load_config(None, dataset=str(root / "news.csv"), overrides=["train.batch_size=32"]),
                    root / "out", InspectOptions(folds=3, epochs=6))
    return found, planted


def test_image_duplicates_are_found(images: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    found, planted, _ = images
    _check(found, "exact", planted["exact"])
    _check(found, "near", planted["near"])


def test_image_copies_in_test_are_cross_split_leaks(images: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    found, planted, _ = images
    leaks = [frozenset(p) for p in planted["exact"] + planted["near"] if p[1].startswith("test/")]
    cross = {frozenset((p["a"]["id"], p["b"]["id"])) for kind in ("exact", "near")
             for p in found["duplicates"][kind]["pairs"] if p["cross_split"]}
    assert len(set(leaks) & cross) >= 0.9 * len(leaks)
    assert found["duplicates"]["leaks"]["test"]["with_duplicate_in_earlier_split"] >= 0.9 * len(leaks)


def test_flipped_image_labels_are_label_issues(images: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    found, planted, _ = images
    flagged = {e["id"] for e in found["label_issues"]["issues"]}
    flipped = set(planted["flipped"])
    assert len(flagged & flipped) >= 0.9 * len(flipped), flipped - flagged
    assert len(flagged) <= 2 * len(flipped)
    issue = next(e for e in found["label_issues"]["issues"] if e["id"] in flipped)
    assert issue["id"].split("_")[-1] == f"{issue['suggested']}.png"  # the colour it was moved from


def test_image_files_are_described(images: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    found, planted, out = images
    assert found["images"]["sizes"]["24x24"] >= 200 and "18x18" in found["images"]["sizes"]
    assert found["images"]["modes"] == {"RGB": found["examples"]}
    unreadable = {Path(u["id"]).name: u["reason"] for u in found["unreadable"]}
    assert set(unreadable) == {Path(p).name for p in planted["broken"]}
    assert all(reason for reason in unreadable.values())
    assert set(found["counts"]["per_split"]) == {"train", "val", "test"}
    on_disk = json.loads((out / "inspect.json").read_text())
    assert on_disk["duplicates"]["exact"]["count"] == found["duplicates"]["exact"]["count"]
    html = (out / "inspect.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 * 12 and "cross-split" in html and "http" not in html


def test_text_duplicates_are_found(texts: tuple[dict[str, Any], dict[str, Any]]) -> None:
    found, planted = texts
    row = {p: f"news.csv:{p + 1}" for pair in planted["exact"] + planted["near"] for p in pair}
    _check(found, "exact", [(row[a], row[b]) for a, b in planted["exact"]])
    _check(found, "near", [(row[a], row[b]) for a, b in planted["near"]])


def test_flipped_text_labels_are_label_issues(texts: tuple[dict[str, Any], dict[str, Any]]) -> None:
    found, planted = texts
    flagged = {e["id"] for e in found["label_issues"]["issues"]}
    flipped = {f"news.csv:{r + 1}" for r in planted["flipped"]}
    assert len(flagged & flipped) >= 0.9 * len(flipped), flipped - flagged
    assert len(flagged) <= 2 * len(flipped)


def test_clean_data_has_no_cross_split_leak(tmp_path: Path) -> None:
    planted = make_planted_image_folder(tmp_path / "clean", per_class=30, test_per_class=10, copies=0, flip=0)
    assert planted["exact"] == planted["near"] == []
    found = inspect(load_config(None, dataset=str(tmp_path / "clean")), tmp_path / "out", InspectOptions(label_issues=False))
    d = found["duplicates"]
    assert d["exact"]["count"] == d["near"]["count"] == 0
    assert all(v["with_duplicate_in_earlier_split"] == 0 for v in d["leaks"].values())
    assert set(d["leaks"]) == {"val", "test"}


def test_text_copies_across_splits_are_leaks(texts: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Equal rows share a split (the content hash), so planted exact copies never leak; planted near
    copies that the hash put in different splits are each counted as a leak of their later split."""
    found, planted = texts
    row = {p: f"news.csv:{p + 1}" for pair in planted["exact"] + planted["near"] for p in pair}
    pairs = {frozenset((p["a"]["id"], p["b"]["id"])): p for kind in ("exact", "near")
             for p in found["duplicates"][kind]["pairs"]}
    exact = [pairs[frozenset((row[a], row[b]))] for a, b in planted["exact"] if frozenset((row[a], row[b])) in pairs]
    assert exact and not any(p["cross_split"] for p in exact)
    order = {"train": 0, "val": 1, "test": 2}
    crossing = [p for a, b in planted["near"] if (p := pairs.get(frozenset((row[a], row[b])))) and p["cross_split"]]
    assert crossing, "the planted near copies all fell in one split: plant more"
    later = {max((p["a"], p["b"]), key=lambda e: order[e["split"]])["id"] for p in crossing}
    leaked = sum(v["with_duplicate_in_earlier_split"] for v in found["duplicates"]["leaks"].values())
    assert leaked >= 0.9 * len(later)
