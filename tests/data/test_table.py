"""Tables in: formats, schema inference, the explicit schema, splits, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfpilot.config import load_config
from tfpilot.data.columns import infer_type
from tfpilot.data.table import prepare_table
from tfpilot.data.table_io import TABLE_DATASETS, read_table
from tfpilot.testing.table import make_table


def _cfg(dataset, outputs, inputs=None, **data):
    features = {"outputs": outputs, **({"inputs": inputs} if inputs is not None else {})}
    return load_config({"data": {"dataset": str(dataset), **data}, "features": features})


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return make_table(tmp_path_factory.mktemp("t"), rows=40, size=8)


def test_inference_reads_every_column_type(table):
    data = prepare_table(_cfg(table, ["kind", "price"]))
    kinds = {c.name: (c.role, c.kind) for c in data.schema}
    assert kinds == {"kind": ("output", "category"), "price": ("output", "number"), "photo": ("input", "image"),
                     "title": ("input", "text"), "size": ("input", "number"), "colour": ("input", "category")}
    train = data.splits["train"]
    assert train.inputs["photo"].dtype == np.uint8 and train.inputs["photo"].shape[1:] == (8, 8, 3)
    assert train.inputs["size"].dtype == np.float32 and np.isnan(data.splits["train"].inputs["size"]).any()
    assert data.spec.input("colour").classes == ("blue", "green", "red")  # the training vocabulary
    assert data.spec.output("kind").classes == ("ant", "bee", "cat")
    assert sum(len(s) for s in data.splits.values()) == 40
    # Split by a hash of each row (stratified in expectation only): training holds every class.
    assert set(np.unique(train.targets["kind"])) == {0, 1, 2}
    assert sorted(np.concatenate([s.ids for s in data.splits.values()]).tolist()) == list(range(40))


def test_rules_of_inference():
    assert infer_type(pd.Series([0, 1, 2, 3, 4] * 4), "output").kind == "category"
    assert infer_type(pd.Series([0.5, 1.25, 3.0, 7.5] * 5 + [9.0]), "output").kind == "number"
    assert infer_type(pd.Series(["yes", "no"] * 5), "output").kind == "binary"
    assert infer_type(pd.Series([f"a long description number {i} of a pet" for i in range(30)]), "input").kind == "text"
    assert infer_type(pd.Series(["Tabby", "Persian", "Mixed Breed"] * 10), "input").kind == "category"
    assert infer_type(pd.Series(range(100, 130)), "input").kind == "skip"  # an id column


def test_inputs_restrict_and_jsonl_and_parquet_read_alike(table, tmp_path):
    frame, _ = read_table(table)
    frame.drop(columns=["photo"]).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    frame.drop(columns=["photo"]).to_parquet(tmp_path / "t.parquet")
    for path in (tmp_path / "t.jsonl", tmp_path / "t.parquet"):
        data = prepare_table(_cfg(path, ["price"], inputs=["size", "colour"]))
        assert [c.name for c in data.spec.inputs] == ["size", "colour"]
        assert len(data.splits["train"]) + len(data.splits["val"]) + len(data.splits["test"]) == 40


def test_unknown_column_names_the_nearest(table):
    with pytest.raises(KeyError, match="no column 'prise'. Did you mean 'price'"):
        prepare_table(_cfg(table, ["prise"]))
    with pytest.raises(KeyError, match="Did you mean 'title'"):
        prepare_table(_cfg(table, ["price"], inputs=["titel"]))


def test_non_numeric_cell_in_a_number_column_names_the_row(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f"{i},{'x' if i % 2 else 'y'}" for i in range(10)]
    rows[6] = "abc,y"
    path.write_text("n,c\n" + "\n".join(rows) + "\n")
    cfg = load_config({"data": {"dataset": str(path)},
                       "features": {"inputs": [{"name": "n", "type": "number"}], "outputs": ["c"]}})
    with pytest.raises(ValueError, match=r"column 'n' is a number column .*row 7 \('abc'\)"):
        prepare_table(cfg)


def test_a_table_pandas_cannot_parse_is_a_user_error_naming_the_file(tmp_path):
    """Not pandas' bare ParserError, which the CLI would print as a bug (a traceback)."""
    from tfpilot.errors import UserError

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(UserError, match=r"bad\.csv: not a readable csv table \(ParserError: .*line 3, saw 4\); fix"):
        read_table(bad)
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(UserError, match=r"bad\.jsonl: not a readable jsonl table"):
        read_table(tmp_path / "bad.jsonl")


def test_missing_image_files_are_skipped_and_reported(table, tmp_path):
    frame, base = read_table(table)
    frame.loc[[3, 5], "photo"] = ["images/nowhere.png", "images/gone.png"]
    path = base / "broken.csv"
    frame.to_csv(path, index=False)
    data = prepare_table(_cfg(path, ["kind"]))
    assert sum(len(s) for s in data.splits.values()) == 38
    reasons = [s.reason for s in data.report.skipped]
    assert len(reasons) == 2 and all(r.startswith("file not found (column 'photo', row ") for r in reasons)
    assert json.loads(json.dumps(data.report.to_dict()))["num_skipped"] == 2


def test_auto_mpg_is_found_by_name_in_the_data_dir(tmp_path, monkeypatch):
    lines = [f'{18 + i % 9}.{i % 10}   {4 + 2 * (i % 3)}   {300 - i}.0   {"?" if i == 2 else f"{130 + i}.0"}   '
             f'{3500 - 10 * i}.   12.0   {70 + i % 12}  {1 + i % 3}\t"car {i}"' for i in range(30)]
    (tmp_path / "auto-mpg.data").write_text("\n".join(lines) + "\n")
    assert "auto_mpg" in TABLE_DATASETS
    data = prepare_table(_cfg("auto_mpg", ["mpg"], data_dir=str(tmp_path)))
    kinds = {c.name: c.kind for c in data.schema}
    assert kinds["mpg"] == "number" and kinds["origin"] == "category" and kinds["horsepower"] == "number"
    assert data.spec.input("origin").classes == ("Europe", "Japan", "USA")
    assert np.isnan(np.concatenate([s.inputs["horsepower"] for s in data.splits.values()])).sum() == 1
    monkeypatch.delenv("TFPILOT_DATA_DIR", raising=False)  # no other place to find it: the error names the file
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="auto-mpg.data"):
        prepare_table(_cfg("auto_mpg", ["mpg"], data_dir=str(tmp_path / "empty")))
