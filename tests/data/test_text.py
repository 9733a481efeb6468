"""Text datasets: tables (CSV/TSV/JSONL), text folders, IMDB's layout, and bad input."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.config import DataConfig
from tfpilot.data import FORMATS, load_dataset, prepare_data
from tfpilot.data.paths import DatasetNotFoundError
from tfpilot.data.splits import hash_split
from tfpilot.data.text import encode_labels, guess_header, is_text_folder, is_text_table
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
    # split by a hash of each text (exact duplicates share a split): the content alone decides
    kept = [t for t in texts if t.strip()]
    y = np.array([data.class_names.index(c) for t, c in zip(texts, labels) if t.strip()])
    parts = hash_split(kept, y, {"val": 0.2, "test": 0.1}, seed=42)
    assert {k: sorted(map(str, v.x)) for k, v in data.splits.items()} == {
        k: sorted(kept[i] for i in idx) for k, idx in parts.items()}
    assert sum(len(v) for v in data.splits.values()) == 40 and set(data.splits["train"].y) == {0, 1}
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


# -- is the first row a header? ----------------------------------------------------------------
#: The first lines of the SMS spam collection: label<TAB>text, no header. csv.Sniffer reads
#: them as space-delimited and calls the first row a header.
SMS = """\
ham\tGo until jurong point, crazy.. Available only in bugis n great world la e buffet... Cine there got amore wat...
ham\tOk lar... Joking wif u oni...
spam\tFree entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121 to receive entry question(std txt rate)T&C's apply 08452810075over18's
ham\tU dun say so early hor... U c already then say...
ham\tNah I don't think he goes to usf, he lives around here though
spam\tFreeMsg Hey there darling it's been 3 week's now and no word back! I'd like some fun you up for it still? Tb ok! XxX std chgs to send, 1.50 to rcv
ham\tEven my brother is not like to speak with me. They treat me like aids patent.
ham\tAs per your request 'Melle Melle (Oru Minnaminunginte Nurungu Vettam)' has been set as your callertune for all Callers. Press *9 to copy your friends Callertune
spam\tWINNER!! As a valued network customer you have been selected to receivea 900 prize reward! To claim call 09061701461. Claim code KL341. Valid 12 hours only.
spam\tHad your mobile 11 months or more? U R entitled to Update to the latest colour mobiles with camera for Free! Call The Mobile Update Co FREE on 08002986030
ham\tI'm gonna be home soon and i don't want to talk about this stuff anymore tonight, k? I've cried enough today.
spam\tSIX chances to win CASH! From 100 to 20,000 pounds txt> CSH11 and send to 87575. Cost 150p/day, 6days, 16+ TsandCs apply Reply HL 4 info
spam\tURGENT! You have won a 1 week FREE membership in our 100,000 Prize Jackpot! Txt the word: CLAIM to No: 81010 T&C www.dbuk.net LCCLTD POBOX 4403LDNW1A7RW18
ham\tI've been searching for the right words to thank you for this breather. I promise i wont take your help for granted and will fulfil my promise. You have been wonderful and a blessing at all times.
ham\tI HAVE A DATE ON SUNDAY WITH WILL!!
spam\tXXXMobileMovieClub: To use your credit, click the WAP link in the next txt message or click here>> http://wap.xxxmobilemovieclub.com?n=QJKGIGHJJGCBL
ham\tOh k...i'm watching here:)
ham\tEh u remember how 2 spell his name... Yes i did. He v naughty make until i v wet.
ham\tFine if that's the way u feel. That's the way its gota b
spam\tEngland v Macedonia - dont miss the goals/team news. Txt ur national team to 87077 eg ENGLAND to 87077 Try:WALES, SCOTLAND 4txt/1.20 POBOXox36504W45WQ 16+
"""
SMS_ROWS = [line.split("\t") for line in SMS.splitlines()]


@pytest.mark.parametrize("name", ["SMSSpamCollection", "sms.tsv"])
def test_a_headerless_label_tab_text_file_keeps_its_first_row(tmp_path, name):
    path = tmp_path / name
    path.write_text(SMS, encoding="utf-8")
    ds = load(path)
    assert ds.class_names == ["ham", "spam"]
    assert texts_of(ds) == [t for _, t in SMS_ROWS]  # the first row is data, not column names
    assert [ds.class_names[i] for i in ds.splits["train"].y] == [y for y, _ in SMS_ROWS]
    assert any("no header" in n for n in ds.report.notes)


@pytest.mark.parametrize("corpus", ["sms", "synthetic"])
def test_a_headerless_text_label_csv_keeps_its_first_row(tmp_path, corpus):
    texts, labels = ([t for _, t in SMS_ROWS], [y for y, _ in SMS_ROWS]) if corpus == "sms" else \
        make_text_corpus(30, seed=2)
    path = write_text_table(tmp_path / "d.csv", texts, labels, header=False)
    ds = load(path)
    assert texts_of(ds) == texts and ds.class_names == sorted(set(labels))
    assert [ds.class_names[i] for i in ds.splits["train"].y] == labels


@pytest.mark.parametrize("first", [["label", "text"], ["v1", "v2"], ["category", "message"]])
def test_a_header_row_is_still_a_header(tmp_path, first):
    path = tmp_path / "d.tsv"
    path.write_text("\t".join(first) + "\n" + SMS, encoding="utf-8")
    ds = load(path)
    assert ds.class_names == ["ham", "spam"] and len(texts_of(ds)) == len(SMS_ROWS)
    assert texts_of(ds)[0] == SMS_ROWS[0][1]


def test_a_quote_that_never_closes_does_not_swallow_the_rows_after_it(tmp_path):
    rows = [*SMS_ROWS[:5], ["ham", '"Hi there, how r u'], *SMS_ROWS[5:], ["ham", '"quoted", then more']]
    path = tmp_path / "sms.tsv"
    path.write_text("".join(f"{y}\t{t}\n" for y, t in rows), encoding="utf-8")
    ds = load(path)
    assert texts_of(ds) == [t for _, t in rows]  # one row per line, quotes kept as text
    assert any("quote" in n for n in ds.report.notes)
    quoted = tmp_path / "q.csv"  # real quoting (a comma and a line break inside quotes) is still read as such
    quoted.write_text('text,label\n"Loved it,\ntruly",pos\n"Hated it",neg\n"fine, I guess",pos\n')
    assert texts_of(load(quoted)) == ["Loved it,\ntruly", "Hated it", "fine, I guess"]


@pytest.mark.parametrize("rows,expected", [
    # tricky headers: words that are also plausible data, a numeric column, fixed-width ids
    ([["label", "text"], ["pos", "what a film"], ["neg", "dull"], ["pos", "great cast"]], True),
    ([["review", "stars"], ["bad film", "0"], ["fine film", "1"], ["good film", "1"]], True),
    ([["id", "comment"], ["00017", "no idea why"], ["00018", "fine"], ["00019", "sure, why not"]], True),
    ([["title", "body"], ["A day", "It was a long day and we went home"],
      ["Night", "Then came the night, dark and deep"], ["Dawn", "And the sun rose over the hills again"]], True),
    # tricky data: a short first text, a label that is also a column name, numeric labels
    ([["Ok", "ham"], *[[t, y] for y, t in SMS_ROWS]], False),
    ([["some words", "text"], ["other words", "image"], ["more words", "text"]], False),
    ([["great film", "1"], ["bad film", "0"], ["fine film", "1"]], False),
    ([["pos", "what a wonderful little film"], ["neg", "boring from start to end"], ["pos", "great cast"]], False),
    ([["Great film"], ["Dull"], ["What a waste of time"]], False),
])
def test_guess_header_on_hand_made_tables(rows, expected):
    assert guess_header(rows) is expected


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9)


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(WORD, min_size=2, max_size=5, unique=True), reps=st.integers(2, 15),
       words=st.lists(WORD, min_size=8, max_size=30, unique=True), text_first=st.booleans(),
       first_label=st.integers(0, 4), data=st.data())
def test_guess_header_tells_a_header_from_a_first_data_row(labels, reps, words, text_first, first_label, data):
    """Tables of distinct texts (3+ words) and recurring labels: the first data row is never
    a header, however short its text; a row of column names above them (known ones, or
    any single words that are not labels) always is."""
    n = reps * len(labels)
    sentence = st.lists(st.sampled_from(words), min_size=3, max_size=12).map(" ".join)
    texts = data.draw(st.lists(sentence, min_size=n, max_size=n, unique=True))
    body = [[t, labels[(i + first_label) % len(labels)]] for i, t in enumerate(texts)]  # each label recurs
    order = (lambda r: r) if text_first else (lambda r: r[::-1])
    rows = [order(r) for r in body]
    assert guess_header(rows) is False
    known = data.draw(st.sampled_from([("text", "label"), ("review", "sentiment"), ("sentence", "y")]))
    unknown = data.draw(st.tuples(WORD, WORD).filter(lambda t: t[1] not in labels and t[0] != t[1]))
    for names in (known, unknown):
        assert guess_header([order(list(names)), *rows]) is True, names
