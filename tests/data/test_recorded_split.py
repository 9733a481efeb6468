"""split.json: stable file splits, and rebuilding exactly the recorded members (or a clear error)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tfpilot.config import DataConfig
from tfpilot.data import RecordedSplitError, prepare_data
from tfpilot.testing import make_image_folder, write_image
from tfpilot.testing.text import make_text_corpus, write_text_table


def _members(data):
    return {name: sorted(ids) for name, ids in data.manifest["splits"].items()}


def _split_of(data):
    return {rel: name for name, ids in data.manifest["splits"].items() for rel in ids}


def test_adding_and_removing_files_moves_no_other_file(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=20, size=8)
    before = _split_of(prepare_data(DataConfig(dataset=str(root))))
    extra = make_image_folder(tmp_path / "extra", per_class=6, size=8, seed=5)
    for p in sorted(extra.rglob("*.png")):  # 6 new files per class, and 2 removed from the first class
        write_image(root / p.parent.name / f"new_{p.name}", np.zeros((8, 8, 3), np.uint8) + 7)
    removed = sorted((root / "circle").glob("000*.png"))[:2]
    for p in removed:
        p.unlink()
    after = _split_of(prepare_data(DataConfig(dataset=str(root))))
    common = set(before) & set(after)
    assert len(common) == 58 and len(after) == 58 + 18
    assert {rel: after[rel] for rel in common} == {rel: before[rel] for rel in common}


def test_the_recorded_split_is_rebuilt_exactly_even_after_files_are_added(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=12, size=8)
    cfg = DataConfig(dataset=str(root), split_seed=3)
    first = prepare_data(cfg)
    manifest = json.loads(json.dumps(first.manifest))  # as split.json holds it
    for k in range(5):
        write_image(root / "square" / f"later_{k}.png", np.full((8, 8, 3), 200, np.uint8))
    again = prepare_data(cfg, manifest=manifest)
    assert again.recorded and _members(again) == _members(first)
    for name in first.splits:
        np.testing.assert_array_equal(again.splits[name].y, first.splits[name].y)
        np.testing.assert_array_equal(again.splits[name].x, first.splits[name].x)
    only_test = prepare_data(cfg, manifest=manifest, splits=["test"])
    assert list(only_test.splits) == ["test"] and len(only_test.splits["test"]) == len(first.splits["test"])


def test_a_missing_recorded_file_is_a_clear_error_naming_it(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=12, size=8)
    first = prepare_data(DataConfig(dataset=str(root)))
    gone = first.manifest["splits"]["test"][0]
    (root / gone).unlink()
    with pytest.raises(RecordedSplitError, match=rf"missing or unreadable now: {gone}.*Restore the original files"):
        prepare_data(DataConfig(dataset=str(root)), manifest=first.manifest)
    # splits that do not need the file still rebuild
    assert prepare_data(DataConfig(dataset=str(root)), manifest=first.manifest, splits=["train"]).recorded


def test_a_changed_or_relabelled_file_is_a_clear_error(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=12, size=8)
    first = prepare_data(DataConfig(dataset=str(root)))
    changed = first.manifest["splits"]["train"][0]
    write_image(root / changed, np.full((8, 8, 3), 99, np.uint8))
    with pytest.raises(RecordedSplitError, match=rf"changed since training .*{changed}"):
        prepare_data(DataConfig(dataset=str(root)), manifest=first.manifest)

    csv = tmp_path / "labels.csv"
    rows = [(p.relative_to(tmp_path).as_posix(), p.parent.name) for p in sorted((tmp_path / "ds").rglob("*.png"))]
    csv.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in rows))
    from_csv = prepare_data(DataConfig(dataset=str(csv)))
    moved = from_csv.manifest["splits"]["train"][0]
    old_label = dict(rows)[moved]
    new_label = "circle" if old_label != "circle" else "square"
    csv.write_text("path,label\n" + "".join(f"{p},{new_label if p == moved else c}\n" for p, c in rows))
    relabelled = rf"another label now: {moved} \(was '{old_label}', now '{new_label}'\)"
    with pytest.raises(RecordedSplitError, match=relabelled):
        prepare_data(DataConfig(dataset=str(csv)), manifest=from_csv.manifest)


def test_a_new_class_folder_does_not_shift_the_recorded_labels(tmp_path):
    root = make_image_folder(tmp_path / "ds", classes=("b", "c"), per_class=10, size=8)
    first = prepare_data(DataConfig(dataset=str(root)))
    make_image_folder(tmp_path / "ds", classes=("a",), per_class=10, size=8)  # sorts first: ids would shift
    again = prepare_data(DataConfig(dataset=str(root)), manifest=first.manifest)
    assert again.class_names == ["b", "c"]
    np.testing.assert_array_equal(again.splits["train"].y, first.splits["train"].y)


def test_the_dataset_may_move_the_paths_are_relative_to_its_root(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=8, size=8, splits=("train", "test"))
    first = prepare_data(DataConfig(dataset=str(root)))
    moved = root.rename(tmp_path / "elsewhere")
    again = prepare_data(DataConfig(dataset=str(moved)), manifest=first.manifest)
    assert _members(again) == _members(first)
    assert all(str(p).startswith(str(moved)) for p in again.splits["test"].ids)


def test_text_tables_are_recorded_by_row_with_a_digest_of_the_text(tmp_path):
    texts, labels = make_text_corpus(30, seed=1)
    path = write_text_table(tmp_path / "reviews.csv", texts, labels)
    first = prepare_data(DataConfig(dataset=str(path)))
    assert first.manifest["kind"] == "texts" and first.manifest["splits"]["train"][0].startswith("reviews.csv:")
    again = prepare_data(DataConfig(dataset=str(path)), manifest=first.manifest)
    assert [list(v.x) for v in again.splits.values()] == [list(v.x) for v in first.splits.values()]
    edited = list(texts)
    row = int(first.manifest["splits"]["test"][0].split(":")[1]) - 2  # line 2 is the first row
    edited[row] = "a different review altogether"
    write_text_table(path, edited, labels)
    with pytest.raises(RecordedSplitError, match=f"'test' split changed since training .*reviews.csv:{row + 2}"):
        prepare_data(DataConfig(dataset=str(path)), manifest=first.manifest)


def test_builtin_arrays_are_recorded_by_index_with_a_fingerprint():
    cfg = DataConfig(dataset="digits", test_limit=50)
    first = prepare_data(cfg)
    manifest = json.loads(json.dumps(first.manifest))
    assert manifest["kind"] == "arrays" and len(manifest["splits"]["test"]) == 50
    assert manifest["sources"] == {"train": "train", "val": "train", "test": "train"}
    again = prepare_data(DataConfig(dataset="digits"), manifest=manifest)  # no test_limit: the record decides
    np.testing.assert_array_equal(again.splits["test"].x, first.splits["test"].x)
    manifest["fingerprints"]["test"] = "0" * 32
    with pytest.raises(RecordedSplitError, match="'test' split differ from the ones the run recorded"):
        prepare_data(DataConfig(dataset="digits"), manifest=manifest)


def test_an_old_split_json_without_fingerprints_still_rebuilds_by_id(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=8, size=8)
    first = prepare_data(DataConfig(dataset=str(root)))
    legacy = {"dataset": str(root), "seed": 42, "held_out_of_train": {"val": 0.2, "test": 0.1},
              "splits": {k: [str(p) for p in v.ids] for k, v in first.splits.items()}}
    again = prepare_data(DataConfig(dataset=str(root)), manifest=legacy)
    assert {k: list(map(str, v.ids)) for k, v in again.splits.items()} == legacy["splits"]


def test_a_dataset_that_now_loads_as_another_kind_is_a_clear_error(tmp_path):
    first = prepare_data(DataConfig(dataset="digits", test_limit=20))
    as_files = dict(first.manifest, kind="files")  # e.g. cifar10 recorded from cifar10-jpg, now from pickles
    with pytest.raises(RecordedSplitError, match="the run recorded files .* now loads as arrays"):
        prepare_data(DataConfig(dataset="digits"), manifest=as_files)


def test_a_split_without_some_class_is_reported(tmp_path):
    """A tiny class can hash into no test example: the data report and the log say which."""
    from tfpilot.config import load_config
    from tfpilot.data import prepare_data
    from tfpilot.testing import make_image_folder

    folder = make_image_folder(tmp_path / "d", classes=("a", "b", "tiny"), per_class=12, size=8)
    for extra in sorted((folder / "tiny").iterdir())[2:]:
        extra.unlink()  # two files: at least one stays in train, so val or test lacks it
    data = prepare_data(load_config({"data": {"dataset": str(folder)}}).data)
    lacking = [s for s in ("val", "test") if 2 not in set(data.splits[s].y.tolist())]
    assert lacking
    for split in lacking:
        note = next(n for n in data.report.notes if n.startswith(f"the {split} split has no example of"))
        missing = sorted(set(data.class_names) - {data.class_names[k] for k in data.splits[split].y})
        assert note.split(": ", 1)[1].split(";")[0] == ", ".join(missing)
