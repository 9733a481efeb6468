"""Dates as a column kind: recognised with their format, their features in numpy and in the model
alike, a saved model that takes raw date strings, and a table with a date column end to end."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tfpilot.config import load_config
from tfpilot.data.columns import infer_type
from tfpilot.data.dates import date_features, detect_format, parse_format
from tfpilot.data.table import prepare_table
from tfpilot.errors import UserError


def _kind(values):
    found = infer_type(pd.Series(values), "input")
    return found.kind, found.format


@pytest.mark.parametrize("values, fmt", [
    (["2016-03-04", "2017-12-31", None], "%Y-%m-%d"),
    (["2016-03-04 10:30:00", "2017-12-31 23:59:59"], "%Y-%m-%d %H:%M:%S"),
    (["2016-03-04T10:30", "2017-12-31T23:59"], "%Y-%m-%dT%H:%M"),
    (["3/12/2016", "25/02/2016", "7/01/2017"], "%d/%m/%Y"),  # as melbourne-housing.csv's Date
    (["12/3/2016", "02/25/2016"], "%m/%d/%Y"),  # a second field over 12: month-first
    (["03.04.2016", "05.06.2017"], "%d.%m.%Y"),  # nothing tells: day-first
])
def test_dates_are_recognised_with_their_format(values, fmt):
    assert _kind(values * 4) == ("date", fmt)


def test_an_ambiguous_column_says_how_it_was_decided():
    assert "no field over 12" in detect_format(pd.Series(["03/04/2016", "05/06/2017"]))[1]
    assert "first field is over 12" in detect_format(pd.Series(["13/04/2016", "05/06/2017"]))[1]


@pytest.mark.parametrize("values", [["1.2.3", "2.10.4"], ["red", "blue"], ["12-34", "56-78"],
                                    ["2016-13-01", "2016-14-02"], ["A-2016-01-02", "B-2016-01-03"]])
def test_strings_that_are_not_dates_stay_categories(values):
    assert _kind(values * 5)[0] == "category"


def test_a_datetime_column_is_a_date_and_outputs_are_never_dates():
    assert _kind(pd.to_datetime(["2020-01-02", "2021-03-04"]))[0] == "date"
    assert infer_type(pd.Series(["2016-03-04", "2017-12-31"]), "output").kind == "binary"


def test_a_format_tfpilot_cannot_read_is_a_user_error():
    for fmt, why in [("%Y-%m", "needs a year"), ("%Y%m%d", "separated"), ("%Y-%m-%d %I", "unknown field")]:
        with pytest.raises(UserError, match=why):
            parse_format(fmt)


def test_the_format_can_be_set_and_is_refused_on_other_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("when,n,y\n" + "".join(f"0{i % 9 + 1}/0{i % 3 + 1}/2016,{i},{i % 2}\n" for i in range(30)))
    inferred = prepare_table(load_config({"data": {"dataset": str(path)}, "features": {"outputs": ["y"]}}))
    assert inferred.spec.input("when").format == "%d/%m/%Y"  # nothing over 12: day-first, and it says so
    assert "no field over 12" in next(c.how for c in inferred.schema if c.name == "when")
    declared = prepare_table(load_config({"data": {"dataset": str(path)}, "features": {
        "inputs": [{"name": "when", "format": "%m/%d/%Y"}, "n"], "outputs": ["y"]}}))
    assert declared.spec.input("when").kind == "date" and declared.spec.input("when").format == "%m/%d/%Y"
    with pytest.raises(ValueError, match="format is for date columns; 'n' is number"):
        load_config({"data": {"dataset": str(path)},
                     "features": {"inputs": [{"name": "n", "type": "number", "format": "%Y"}], "outputs": ["y"]}})
    with pytest.raises(UserError, match="not dates tfpilot recognises.*set features.inputs\\[n\\].format"):
        prepare_table(load_config({"data": {"dataset": str(path)},
                                   "features": {"inputs": [{"name": "n", "type": "date"}], "outputs": ["y"]}}))


DATES = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0))


@settings(max_examples=40, deadline=None)
@given(stamps=st.lists(DATES, min_size=1, max_size=20))
def test_the_features_are_those_of_the_calendar(stamps):
    got = date_features([d.strftime("%d/%m/%Y %H:%M:%S") for d in stamps], "%d/%m/%Y %H:%M:%S")
    epoch = dt.datetime(1970, 1, 1)
    want = [[d.year, d.month, d.weekday(), (d - epoch).total_seconds() / 86400] for d in stamps]
    np.testing.assert_allclose(got, np.array(want, np.float32), rtol=0, atol=1e-3)


def test_missing_and_unreadable_dates_are_nan_rows_and_two_digit_years_follow_strptime():
    got = date_features(["", None, "31/13/16", "1/2", "29/02/17", "05/06/68", "05/06/69", "29/02/16"], "%d/%m/%y")
    assert np.isnan(got[:5]).all(axis=1).all()
    assert got[5:, 0].tolist() == [2068.0, 1969.0, 2016.0]


@pytest.fixture(scope="module")
def raw_dates():
    rng = np.random.default_rng(0)
    days = rng.integers(-20000, 30000, 64)
    stamps = [(dt.datetime(1970, 1, 1) + dt.timedelta(days=int(d), seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S")
              for d, s in zip(days, rng.integers(0, 86400, 64))]
    return np.array(stamps + ["", "not a date", "2016-02-30 00:00:00"], dtype=object)


def test_the_layer_computes_what_the_numpy_function_does(raw_dates):
    from tfpilot.models.date_layers import DateFeatures

    layer = DateFeatures(date_format="%Y-%m-%d %H:%M:%S")
    want = date_features(list(raw_dates), "%Y-%m-%d %H:%M:%S")
    np.testing.assert_array_equal(np.asarray(layer.features(raw_dates)), want)
    layer.adapt(raw_dates[:40])
    out = np.asarray(layer(raw_dates))
    train = want[:40][~np.isnan(want[:40]).any(axis=1)].astype(np.float64)
    scaled = (want - train.mean(0)) / train.std(0)
    missing = np.isnan(want).any(axis=1)
    np.testing.assert_allclose(out[~missing, :4], scaled[~missing], atol=1e-4)
    assert missing[-3:].all() and missing.sum() == 3  # "", "not a date" and 30 February
    assert (out[missing, :4] == 0).all() and out[:, 4].tolist() == missing.astype(float).tolist()


def test_a_saved_model_takes_raw_date_strings(raw_dates, tmp_path):
    import keras

    from tfpilot.models.date_layers import DateFeatures

    inp = keras.Input(shape=(), dtype="string", name="when")
    layer = DateFeatures(date_format="%Y-%m-%d %H:%M:%S", name="when_date")
    model = keras.Model(inp, keras.layers.Dense(2)(layer(inp)))
    layer.adapt(raw_dates)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("when_date").get_config()["reference"] == "1970-01-01"
    np.testing.assert_allclose(loaded.predict(raw_dates, verbose=0), model.predict(raw_dates, verbose=0), atol=1e-6)


def _date_table(path, rows=120):
    """A target that a date tells: weekend sales are high."""
    rng = np.random.default_rng(1)
    days = [dt.date(2016, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 700, rows)]
    frame = pd.DataFrame({"Date": [f"{d.day}/{d.month:02d}/{d.year}" for d in days],
                          "shop": rng.choice(["a", "b"], rows),
                          "sales": [100.0 * (d.weekday() >= 5) + float(x)
                                    for d, x in zip(days, rng.normal(size=rows))]})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def date_run(tmp_path_factory):
    """A table with a date column, trained 1 epoch (no report)."""
    import tfpilot

    root = tmp_path_factory.mktemp("dates")
    config = {"data": {"dataset": str(_date_table(root / "sales.csv"))}, "features": {"outputs": ["sales"]},
              "model": {"name": "multitask", "params": {"hidden_units": [8]}},
              "train": {"epochs": 1, "batch_size": 32, "precision": "float32",
                        "callbacks": {"tensorboard": False, "progress": "none"}},
              "output": {"run_dir": str(root / "run")}}
    return tfpilot.train(config, report=False).path


def test_a_table_with_a_date_column_trains_and_predicts_from_raw_strings(date_run):
    import tfpilot

    schema = yaml.safe_load((date_run / "schema.yaml").read_text())["features"]["inputs"]
    assert {"name": "Date", "type": "date", "format": "%d/%m/%Y"} in schema  # how it was read, to edit
    assert tfpilot.load(date_run).spec.input("Date").format == "%d/%m/%Y"
    predictor = tfpilot.load(date_run)  # a fresh load of the saved model
    dates = ["5/03/2016", "6/03/2016", ""]
    out = predictor.predict_raw([{"Date": d, "shop": "a"} for d in dates])["sales"]
    layer = predictor.model.get_layer("Date_date")
    np.testing.assert_array_equal(np.asarray(layer.features(np.array(dates, dtype=object))),
                                  date_features(dates, "%d/%m/%Y"))
    assert np.isfinite(out).all() and len(set(out.tolist())) == 3  # each date gives its own prediction


def test_evaluate_reads_an_older_positional_split_json_as_it_was(date_run, tmp_path):
    import shutil

    from tfpilot.evaluation.evaluate import evaluate

    run = shutil.copytree(date_run, tmp_path / "old-run")
    legacy = {"dataset": json.loads((run / "split.json").read_text())["dataset"], "seed": 42,
              "held_out_of_train": {"val": 0.2, "test": 0.1},  # as split.json was before hash splits
              "splits": {"train": list(range(30, 120)), "val": list(range(0, 30, 2)), "test": list(range(1, 30, 2))}}
    (run / "split.json").write_text(json.dumps(legacy))
    result = evaluate(run, save=False)
    assert result["num_examples"] == 15 and result["evaluated_on"]["recorded_split"]
