"""Table splits by a hash of each row's content or id: stable when rows are added, duplicates together,
stratified in expectation, recorded in split.json and rebuilt from it (older positional ones too)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.config import load_config
from tfpilot.data import RecordedSplitError
from tfpilot.data.splits import unit_hash
from tfpilot.data.table import prepare_table
from tfpilot.data.table_split import row_keys, split_rows
from tfpilot.errors import UnknownNameError

FRACTIONS = {"val": 0.2, "test": 0.1}


def _cfg(path, **data):
    return load_config({"data": {"dataset": str(path), **data}, "features": {"outputs": ["kind"]}})


def _split_of(data):
    return {int(i): name for name, ids in data.manifest["splits"].items() for i in ids}


def _write(path, frame):
    frame.to_csv(path, index=False)
    return path


def _frame(rows, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"n": rng.integers(0, 1000, rows), "colour": rng.choice(["red", "green", "blue"], rows),
                         "x": np.round(rng.normal(size=rows), 3), "kind": rng.choice(["ant", "bee"], rows)})


ROW = st.tuples(st.one_of(st.integers(0, 30), st.none()), st.sampled_from(["a", "b", "c"]),
                st.one_of(st.none(), st.floats(-5, 5, width=32)),
                st.sampled_from([0, 1, 2]))


def _parts(records):
    frame = pd.DataFrame(records, columns=["n", "s", "x", "y"])  # None in x: a float column with NaN
    keys = row_keys(frame)
    parts = split_rows(keys, frame["y"].to_numpy(), FRACTIONS, seed=3)
    return keys, {int(i): name for name, idx in parts.items() for i in idx}


def _hashed(key):
    u = unit_hash(3, key)
    return "val" if u < 0.2 else "test" if u < 0.3 else "train"


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=60), added=st.lists(ROW, max_size=15))
def test_appending_rows_never_moves_an_existing_row(rows, added):
    keys, before = _parts(rows)
    keys_after, after = _parts(rows + added)
    assert keys_after[: len(rows)] == keys  # appended rows (even with NaN in an int column) key nobody anew
    assert sorted(after) == list(range(len(rows) + len(added)))  # a partition

    def forced(parts, ks):  # the one override of the hash: a class with no hashed train row keeps one
        return {i for i, p in parts.items() if p != _hashed(ks[i])}

    moved = {i for i in before if before[i] != after[i]}
    assert moved <= forced(before, keys) | forced(after, keys_after)
    for parts, ks in ((before, keys), (after, keys_after)):
        for i, p in parts.items():  # duplicates (equal keys) always share a split
            assert all(parts[j] == p for j in range(len(ks)) if ks[j] == ks[i])


def test_a_table_grown_by_5_rows_keeps_every_row_where_it_was(tmp_path):
    frame = _frame(398)
    before = _split_of(prepare_table(_cfg(_write(tmp_path / "t.csv", frame))))
    grown = pd.concat([frame, _frame(5, seed=1)], ignore_index=True)
    grown.loc[400, "n"] = None  # a missing cell turns the integer column into floats
    after = _split_of(prepare_table(_cfg(_write(tmp_path / "t.csv", grown))))
    assert {i: after[i] for i in range(398)} == before
    reordered = grown[["kind", "x", "colour", "n"]]  # the order of the columns keys nothing differently
    assert _split_of(prepare_table(_cfg(_write(tmp_path / "t.csv", reordered)))) == after


def test_duplicate_rows_land_in_one_split(tmp_path):
    frame = _frame(300)
    frame = pd.concat([frame, frame.iloc[:100]], ignore_index=True)  # 100 exact copies
    where = _split_of(prepare_table(_cfg(_write(tmp_path / "t.csv", frame))))
    assert all(where[i] == where[300 + i] for i in range(100))
    assert {where[i] for i in range(100)} == {"train", "val", "test"}


def test_every_class_is_split_in_the_fractions_asked():
    y = np.repeat([0, 1, 2], [12_000, 6_000, 2_000])  # 60 / 30 / 10 %
    parts = split_rows([f"row {i}" for i in range(len(y))], y, FRACTIONS, seed=0)
    for name, expected in {"train": 0.7, "val": 0.2, "test": 0.1}.items():
        share = np.bincount(y[parts[name]], minlength=3) / np.bincount(y)
        assert np.abs(share - expected).max() < 0.025, (name, share)  # about 3 sd of the smallest class


def test_an_id_column_keys_the_split_and_is_not_an_input(tmp_path):
    frame = _frame(200)
    frame.insert(0, "user", [f"u{i % 40}" for i in range(200)])  # 40 users of 5 rows each
    data = prepare_table(_cfg(_write(tmp_path / "t.csv", frame), id_column="user"))
    assert "user" not in [c.name for c in data.spec.inputs]
    assert any(c.name == "user" and c.role == "skipped" for c in data.schema)
    assert data.manifest["split_by"] == "id:user"
    where = _split_of(data)
    for user in range(40):  # a user's rows share a split, whatever else they hold
        assert len({where[i] for i in range(user, 200, 40)}) == 1
    frame.loc[3, "x"] = 99.0  # a row's other cells changed: with an id column, it stays
    assert _split_of(prepare_table(_cfg(_write(tmp_path / "t.csv", frame), id_column="user"))) == where


def test_an_unknown_id_column_names_the_nearest(tmp_path):
    path = _write(tmp_path / "t.csv", _frame(20))
    with pytest.raises(UnknownNameError, match="data.id_column: the table has no column 'colur'. Did you mean 'col"):
        prepare_table(_cfg(path, id_column="colur"))


def test_the_recorded_split_is_rebuilt_and_a_changed_row_is_an_error(tmp_path):
    frame = _frame(120)
    path = _write(tmp_path / "t.csv", frame)
    first = prepare_table(_cfg(path))
    recorded = json.loads(json.dumps(first.manifest))  # as split.json holds it
    _write(path, pd.concat([frame, _frame(30, seed=2)], ignore_index=True))
    again = prepare_table(_cfg(path), manifest=recorded)  # rows added since: exactly the recorded rows
    assert again.manifest == recorded
    assert {k: v.ids.tolist() for k, v in again.splits.items()} == recorded["splits"]
    changed = frame.copy()
    changed.loc[int(recorded["splits"]["test"][0]), "colour"] = "purple"
    _write(path, changed)
    with pytest.raises(RecordedSplitError, match="rows of the run's test split.* hold other values"):
        prepare_table(_cfg(path), manifest=recorded)
    _write(path, frame.iloc[:100])
    with pytest.raises(RecordedSplitError, match="missing or unusable now"):
        prepare_table(_cfg(path), manifest=recorded)


def test_an_older_positional_split_json_still_gives_its_rows(tmp_path):
    path = _write(tmp_path / "t.csv", _frame(50))
    legacy = {"dataset": str(path), "seed": 42, "held_out_of_train": FRACTIONS,
              "splits": {"train": list(range(10, 50)), "val": list(range(0, 10, 2)), "test": list(range(1, 10, 2))}}
    data = prepare_table(_cfg(path), manifest=legacy)
    assert {k: v.ids.tolist() for k, v in data.splits.items()} == legacy["splits"]
    assert data.manifest == legacy  # what evaluate compares with split.json


def test_an_id_column_is_refused_where_it_would_not_be_honoured():
    with pytest.raises(ValueError, match="data.id_column keys the split of a table's rows"):
        load_config({"data": {"dataset": "digits", "id_column": "user"}})
    with pytest.raises(ValueError, match="'kind' is an output"):
        load_config({"data": {"dataset": "t.csv", "id_column": "kind"}, "features": {"outputs": ["kind"]}})


def test_cv_folds_deal_train_and_val_into_k_folds_and_keep_test(tmp_path):
    path = _write(tmp_path / "t.csv", _frame(300))
    plain = prepare_table(_cfg(path))
    before = {k: set(v.ids.tolist()) for k, v in plain.splits.items()}
    folds = [prepare_table(_cfg(path, cv_fold=(i, 4))) for i in range(4)]
    vals = [set(f.splits["val"].ids.tolist()) for f in folds]
    assert set().union(*vals) == before["train"] | before["val"]  # every train + val row validates once ...
    assert sum(len(v) for v in vals) == len(before["train"]) + len(before["val"])  # ... and only once
    for i, (f, val) in enumerate(zip(folds, vals)):
        assert set(f.splits["test"].ids.tolist()) == before["test"]
        assert set(f.splits["train"].ids.tolist()) == (before["train"] | before["val"]) - val
        assert f.manifest["cv_fold"] == [i, 4]
    # the folds cut across the split's own train and val (their hashes are salted apart)
    assert all(val & before["train"] and val & before["val"] for val in vals)


def test_a_fold_run_is_rebuilt_from_its_split_json_and_grown_tables_keep_each_rows_fold(tmp_path):
    frame = _frame(200)
    path = _write(tmp_path / "t.csv", frame)
    fold = prepare_table(_cfg(path, cv_fold=(1, 5)))
    again = prepare_table(_cfg(path, cv_fold=(1, 5)), manifest=json.loads(json.dumps(fold.manifest)))
    assert again.splits["val"].ids.tolist() == fold.splits["val"].ids.tolist()
    _write(path, pd.concat([frame, _frame(40, seed=7)], ignore_index=True))
    grown = prepare_table(_cfg(path, cv_fold=(1, 5)))
    for name in ("train", "val", "test"):
        assert set(fold.splits[name].ids.tolist()) <= set(grown.splits[name].ids.tolist())


@pytest.mark.parametrize("data, message", [
    ({"cv_fold": (5, 5)}, "0 <= i < k"),
    ({"cv_fold": (0, 1)}, "k >= 2"),
    ({"cv_fold": (0, 5), "train_on_val": True}, "set one"),
])
def test_a_bad_cv_fold_is_refused(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        _cfg(tmp_path / "t.csv", **data)
    if "train_on_val" not in data:
        return
    with pytest.raises(ValueError, match="features section"):
        load_config({"data": {"dataset": "digits", "cv_fold": (0, 5)}})


def test_a_fold_with_no_rows_is_refused_before_anything_trains(tmp_path):
    from tfpilot.errors import UserError

    path = _write(tmp_path / "t.csv", _frame(30))
    with pytest.raises(UserError, match=r"fold 1 of 1000 holds no rows of train \+ val .*train.cv_folds"):
        prepare_table(_cfg(path, cv_fold=(0, 1000)))
