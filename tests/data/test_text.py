"""Text datasets: tables (CSV/TSV/JSONL), text folders, IMDB's layout, and bad input."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from tfpilot.config import DataConfig
from tfpilot.data import FORMATS, load_dataset, prepare_data
from tfpilot.data.paths import DatasetNotFoundError
from tfpilot.data.text import encode_labels, is_text_folder, is_text_table
from tfpilot.testing import make_image_folder, write_image
from tfpilot.testing.text import make_text_corpus, write_text_folder, write_text_table


def load(path, **kw):
    return load_dataset(DataConfig(dataset=str(path), **kw))


def texts_of(ds, split="train"):
    return [str(t) for t in ds.splits[split].x]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_tables_in_each_format_load_texts_and_string_labels(tmp_path, suffix):
    texts, labels = make_text_corpus(12, seed=1)
    path = write_text_table(tmp_path / f"reviews{suffix}", texts, labels)
    ds = load(path)
    assert ds.input_spec.kind == "text" and ds.input_spec.shape == ()
    assert ds.class_names == ["neg", "pos"]
    assert texts_of(ds) == texts
    assert [ds.class_names[i] for i in ds.splits["train"].y] == labels
    assert ds.splits["train"].x.dtype == object


def test_column_names_are_guessed_case_insensitively(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('id,Review,Sentiment\n1,"Loved it, truly",positive\n2,"Hated it",negative\n')
    ds = load(path)
    assert texts_of(ds) == ["Loved it, truly", "Hated it"]
    assert ds.class_names == ["negative", "positive"]
    assert ds.splits["train"].y.tolist() == [1, 0]


def test_columns_can_be_named_in_the_config(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"body": "good", "stars": 5, "title": "x"}, {"body": "bad", "stars": 1, "title": "y"}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ds = load(path, text_column="body", label_column="stars")
    assert texts_of(ds) == ["good", "bad"] and ds.class_names == ["1", "5"]


def test_a_missing_column_is_a_clear_error_listing_the_columns(tmp_path):
    path = write_text_table(tmp_path / "d.csv", ["a b", "c d"], ["x", "y"], text_column="comment_text",
                            label_column="toxic")
    with pytest.raises(ValueError) as err:
        load(path, text_column="content")
    msg = str(err.value)
    assert "'content'" in msg and "'comment_text'" in msg and "'toxic'" in msg and "data.text_column" in msg
    with pytest.raises(ValueError, match="cannot tell which column holds the label.*'toxic'.*data.label_column"):
        load(path, text_column="comment_text")


def test_integer_labels_sort_numerically_and_multiclass_works(tmp_path):
    texts, _ = make_text_corpus(6, seed=0)
    labels = [10, 2, 1, 10, 2, 1]
    ds = load(write_text_table(tmp_path / "d.csv", texts, labels))
    assert ds.class_names == ["1", "2", "10"]
    assert ds.splits["train"].y.tolist() == [2, 1, 0, 2, 1, 0]
    assert encode_labels(["b", "a", "b"])[1] == ["a", "b"]


def test_headerless_csv_guesses_text_and_label_columns(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("pos,what a wonderful little film\nneg,boring from start to end\npos,great cast\n")
    ds = load(path)
    assert texts_of(ds)[0] == "what a wonderful little film"
    assert ds.class_names == ["neg", "pos"]
    assert any("no header" in n for n in ds.report.notes)
    ds = load(path, header=False, text_column=1, label_column=0)
    assert texts_of(ds)[1] == "boring from start to end"


@pytest.mark.parametrize("content,fmt", [
    ('{"text": "fine film", "label": "pos"}\n{"text": "awful", "label": "neg"}\n', "jsonl"),
    ("text\tlabel\nfine film\tpos\nawful, just awful\tneg\n", "tsv"),
])
def test_format_is_sniffed_when_the_extension_says_nothing(tmp_path, content, fmt):
    for name in ("reviews.txt", "reviews"):
        path = tmp_path / name
        path.write_text(content)
        assert is_text_table(path)
        ds = load(path)
        assert texts_of(ds)[0] == "fine film" and ds.class_names == ["neg", "pos"]


def test_bad_bytes_empty_texts_and_missing_labels_are_counted_not_fatal(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(
        b"text,label\n"
        b"good film,pos\n"
        b"caf\xe9 scene \xff\xfe was fine,pos\n"  # latin-1 / garbage bytes
        b"   ,neg\n"  # empty text
        b"no label here,\n"  # missing label
        b"dull,neg\n"
    )
    data = prepare_data(DataConfig(dataset=str(path), val_split=0.0, test_split=0.0))
    texts = texts_of(data.dataset)
    assert len(texts) == 3 and "caf\ufffd scene \ufffd\ufffd was fine" in texts
    report = data.report.to_dict()
    reasons = sorted(s["reason"] for s in report["skipped"])
    assert report["num_skipped"] == 2
    assert reasons[0].startswith("empty text") and reasons[1].startswith("missing label")
    assert any("1 text(s) held bytes that are not UTF-8" in n and "d.csv:3" in n for n in report["notes"])


def test_bad_json_lines_are_skipped_and_reported(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "good", "label": 1}\n{not json\n[1, 2]\n{"text": "bad", "label": 0}\n')
    ds = load(path)
    assert texts_of(ds) == ["good", "bad"]
    assert sorted(s.path.rsplit(":", 1)[1] for s in ds.report.skipped) == ["2", "3"]


def test_text_csv_and_image_csv_each_go_to_their_own_format(tmp_path):
    make_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=8)
    rows = ["path,label"] + [f"imgs/{c}/{i:04d}.png,{c}" for c in "ab" for i in range(3)]
    image_csv = tmp_path / "images.csv"
    image_csv.write_text("\n".join(rows) + "\n")
    text_csv = write_text_table(tmp_path / "texts.csv", *make_text_corpus(6))
    assert not is_text_table(image_csv) and FORMATS.get("image_csv").detect(image_csv)
    assert is_text_table(text_csv) and not FORMATS.get("image_csv").detect(text_csv)
    assert load(image_csv).input_spec.kind == "image"
    assert load(text_csv).input_spec.kind == "text"
    # a "file" column next to a text column is still a text table
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("file,text,label\nr1.txt,great,pos\nr2.txt,awful,neg\n")
    assert is_text_table(mixed) and load(mixed).class_names == ["neg", "pos"]


def test_text_folder_with_class_folders_gets_stratified_splits(tmp_path):
    texts, labels = make_text_corpus(40, seed=2)
    root = write_text_folder(tmp_path / "corpus", texts, labels)
    (root / "pos" / "notes.md").write_text("not a review")
    (root / "neg" / "0099.txt").write_bytes(b"")
    assert is_text_folder(root)
    data = prepare_data(DataConfig(dataset=str(root)))
    assert data.class_names == ["neg", "pos"] and data.input_spec.kind == "text"
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 28, "val": 8, "test": 4}
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in data.report.skipped}
    assert reasons["0099.txt"] == "empty text" and "not a text file" in reasons["notes.md"]


def test_text_folder_with_given_splits_and_image_folders_are_told_apart(tmp_path):
    train = make_text_corpus(8, classes=("a", "b", "c"), seed=0)
    test = make_text_corpus(6, classes=("a", "b", "c"), seed=1)
    root = write_text_folder(tmp_path / "t", *train, split="train")
    write_text_folder(root, *test, split="test")
    ds = load(root)
    assert ds.class_names == ["a", "b", "c"] and len(ds.splits["test"]) == 6
    assert ds.splits["test"].ids[0].startswith("test/")
    images = make_image_folder(tmp_path / "i", classes=("x", "y"), per_class=2, size=8)
    assert not is_text_folder(images) and load(images).input_spec.kind == "image"


def _fake_imdb(root, per_class=3):
    """A miniature aclImdb tree (plus the unsup/ folder Stanford's archive has)."""
    for split in ("train", "test"):
        for label, word in (("neg", "awful"), ("pos", "great")):
            for i in range(per_class):
                p = root / "aclImdb" / split / label / f"{i}_{1 if label == 'neg' else 9}.txt"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(f"A {word} movie.<br /><br />Number {i}.")
    (root / "aclImdb" / "train" / "unsup").mkdir()
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabelled")
    (root / "aclImdb" / "imdb.vocab").write_text("the\n")


def test_imdb_reads_stanfords_archive_through_the_cache(tmp_path):
    _fake_imdb(tmp_path / "src")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with tarfile.open(data_dir / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")
    ds = load_dataset(DataConfig(dataset="imdb", data_dir=data_dir))
    assert ds.class_names == ["neg", "pos"] and ds.input_spec.kind == "text"
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 6, "test": 6}
    assert ds.splits["train"].y.tolist() == [0, 0, 0, 1, 1, 1]
    assert texts_of(ds, "test")[-1] == "A great movie.<br /><br />Number 2."
    assert ds.splits["train"].ids[0] == "train/neg/0_1.txt"


def test_imdb_reads_an_extracted_folder(tmp_path):
    _fake_imdb(tmp_path)
    ds = load_dataset(DataConfig(dataset="imdb", data_dir=tmp_path))
    assert len(ds.splits["train"]) == 6


def test_imdb_not_found_offline_says_where_it_looked(tmp_path, monkeypatch):
    import keras

    monkeypatch.delenv("TFPILOT_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(DataConfig(dataset="imdb", data_dir=tmp_path / "empty"))
    msg = str(err.value)
    assert "aclImdb_v1.tar.gz" in msg and str(tmp_path / "empty") in msg and "no network" in msg


def test_an_empty_table_and_a_single_class_are_clear_errors(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("text,label\n")
    with pytest.raises(ValueError, match="no usable training text"):
        load(empty)
    one = write_text_table(tmp_path / "o.csv", ["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="at least 2"):
        load(one)


def test_binary_files_and_images_are_not_text_tables(tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)))
    img = write_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    assert not is_text_table(blob) and not is_text_table(img)


@pytest.mark.slow
def test_real_imdb_has_25000_reviews_per_split(shared_datasets):
    ds = load_dataset(DataConfig(dataset="imdb", data_dir=shared_datasets))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 25000, "test": 25000}
    assert np.bincount(ds.splits["test"].y).tolist() == [12500, 12500]
    assert ds.report.skipped == []


def test_semicolon_csv_and_a_long_document(tmp_path):
    long_text = "word " * 40_000  # 200 KB in one field: above the csv module's default limit
    path = tmp_path / "d.csv"
    path.write_text(f'text;label\n"{long_text}";pos\n"short, with a comma";neg\n')
    ds = load(path)
    assert ds.class_names == ["neg", "pos"]
    assert len(texts_of(ds)[0]) == len(long_text) and texts_of(ds)[1] == "short, with a comma"
