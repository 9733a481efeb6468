import json
import tarfile
import zipfile

import numpy as np
import pytest

from tfpilot.config import DataConfig
from tfpilot.data import prepare_data
from tfpilot.data.splits import unit_hash
from tfpilot.testing import make_image_folder, write_image


def test_class_folders_are_split_70_20_10_by_a_hash_of_each_path(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=20, size=12)
    data = prepare_data(DataConfig(dataset=str(root)))
    assert data.class_names == ["circle", "square", "triangle"]
    assert data.input_spec.shape == (12, 12, 3)
    recorded = data.manifest["splits"]
    assert sorted(p for ids in recorded.values() for p in ids) == sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    for name, ids in recorded.items():  # val = hash in [0, 0.2), test = [0.2, 0.3), train = the rest
        for rel in ids:
            u = unit_hash(42, rel)
            assert name == ("val" if u < 0.2 else "test" if u < 0.3 else "train"), rel
    assert set(np.unique(data.splits["train"].y)) == {0, 1, 2}
    assert data.splits["train"].x.dtype == np.uint8
    assert data.manifest["root"] == str(root) and data.manifest["kind"] == "files"


def test_split_is_deterministic_and_disjoint(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=10, size=8)
    a = prepare_data(DataConfig(dataset=str(root), split_seed=3)).manifest["splits"]
    b = prepare_data(DataConfig(dataset=str(root), split_seed=3)).manifest["splits"]
    c = prepare_data(DataConfig(dataset=str(root), split_seed=4)).manifest["splits"]
    assert a == b and a != c
    all_ids = [p for ids in a.values() for p in ids]
    assert len(all_ids) == len(set(all_ids)) == 30


def test_train_test_layout_keeps_given_splits(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=6, size=8, splits=("train", "test"), suffix=".jpg")
    data = prepare_data(DataConfig(dataset=str(root), val_split=0.5))
    assert len(data.splits["test"]) == 18
    assert len(data.splits["train"]) + len(data.splits["val"]) == 18
    assert all(p.startswith("test/") for p in data.manifest["splits"]["test"])
    assert all(p.startswith("train/") for p in data.manifest["splits"]["val"])


def test_corrupt_and_non_image_files_are_skipped_and_reported(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=8, size=8, corrupt=1, non_image=1)
    # a truncated PNG too
    good = next((root / "circle").glob("0000.png")).read_bytes()
    (root / "circle" / "truncated.png").write_bytes(good[: len(good) // 2])
    data = prepare_data(DataConfig(dataset=str(root)))
    skipped = {"/".join(s.path.split("/")[-2:]): s.reason for s in data.report.skipped}
    assert len(skipped) == 3 + 3 + 1
    assert "not an image file" in skipped["square/notes_0.txt"]
    assert "corrupt or unreadable image" in skipped["circle/corrupt_0.png"]
    assert "truncated" in skipped["circle/truncated.png"]
    assert sum(len(s) for s in data.splits.values()) == 24
    report = data.report.to_dict()
    assert report["num_skipped"] == 7
    json.dumps(report)  # serialisable as data_report.json


def test_empty_class_is_dropped_with_a_note(tmp_path):
    root = make_image_folder(tmp_path / "ds", per_class=6, size=8)
    (root / "empty").mkdir()
    (root / "only_bad").mkdir()
    (root / "only_bad" / "x.png").write_bytes(b"not a png")
    data = prepare_data(DataConfig(dataset=str(root)))
    assert data.class_names == ["circle", "square", "triangle"]
    assert set(data.report.empty_classes) == {"empty", "only_bad"}


def test_no_readable_image_is_an_error(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "ds" / cls).mkdir(parents=True)
        (tmp_path / "ds" / cls / "bad.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="no readable training image"):
        prepare_data(DataConfig(dataset=str(tmp_path / "ds")))


def test_mixed_sizes_and_modes_are_normalised(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        write_image(tmp_path / "ds" / "a" / f"{i}.png", rng.integers(0, 255, (10 + i, 12, 3), dtype=np.uint8))
        write_image(tmp_path / "ds" / "b" / f"{i}.png", rng.integers(0, 255, (20, 9 + i), dtype=np.uint8))
    data = prepare_data(DataConfig(dataset=str(tmp_path / "ds"), image_size=(16, 16)))
    assert data.input_spec.shape == (16, 16, 3)  # a mix of gray and RGB -> RGB
    assert data.splits["train"].x.shape[1:] == (16, 16, 3)
    gray = prepare_data(DataConfig(dataset=str(tmp_path / "ds"), image_size=(8, 8), color_mode="grayscale"))
    assert gray.input_spec.shape == (8, 8, 1)


def test_csv_of_paths_and_labels(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=5, size=8, classes=("x", "y"))
    rows = ["filename,label"] + [f"imgs/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    rows.append("imgs/missing.png,x")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    data = prepare_data(DataConfig(dataset=str(tmp_path / "labels.csv")))
    assert data.class_names == ["x", "y"]
    assert sum(len(s) for s in data.splits.values()) == 10
    assert [s.reason for s in data.report.skipped] == ["file not found"]


def test_csv_without_a_label_column_lists_the_columns(tmp_path):
    (tmp_path / "l.csv").write_text("path,comment\na.png,hi\n")
    with pytest.raises(ValueError, match="no a label column. Columns found: path, comment"):
        prepare_data(DataConfig(dataset=str(tmp_path / "l.csv")))


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_are_extracted_once(tmp_path, kind):
    root = make_image_folder(tmp_path / "src" / "mydata", per_class=4, size=8, splits=("train", "test"))
    archive = tmp_path / f"mydata.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for p in root.rglob("*"):
                zf.write(p, p.relative_to(tmp_path / "src"))
    else:
        with tarfile.open(archive, "w:gz") as tf_:
            tf_.add(root, arcname="mydata")
    data = prepare_data(DataConfig(dataset=str(archive)))
    assert len(data.splits["test"]) == 12
    first = data.manifest["splits"]["test"][0]
    again = prepare_data(DataConfig(dataset=str(archive)))
    assert again.manifest["splits"]["test"][0] == first  # same cached extraction


def test_unknown_dataset_name_suggests_and_says_it_is_not_a_path():
    with pytest.raises(KeyError) as err:
        prepare_data(DataConfig(dataset="mnsit"))
    assert "Did you mean 'mnist'" in str(err.value) and "not an existing path" in str(err.value)


def test_nested_class_folders_are_listed_in_path_component_order(tmp_path):
    """Files are ordered by their path's components ("a" before "a-b", though "-" sorts before
    "/"); hidden sub-folders and non-images are left out."""
    from pathlib import Path

    from tfpilot.data.folder import _files_under

    cls = tmp_path / "cat"
    for rel in ["a-b/1.png", "a/2.png", "a/z/3.png", "a.png", ".hidden/4.png", "b/c/5.png", "0.png"]:
        (cls / rel).parent.mkdir(parents=True, exist_ok=True)
        (cls / rel).write_bytes(b"")
    got = [Path(p).relative_to(cls).as_posix() for p in _files_under(cls)]
    assert got == ["0.png", "a/2.png", "a/z/3.png", "a-b/1.png", "a.png", "b/c/5.png"]
    assert got == sorted(got, key=lambda r: r.split("/"))
