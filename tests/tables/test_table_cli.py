"""``tfpilot train --dataset TABLE --target COL`` with no other flag; bad rows at prediction time."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from tfpilot.cli.main import app
from tfpilot.inference import InputError
from tfpilot.testing.table import make_table

runner = CliRunner()


def test_train_with_only_dataset_and_target_prints_the_inferred_schema(tmp_path, monkeypatch):
    table = make_table(tmp_path, rows=60, images=False, name="pets.csv")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--dataset", str(table), "--target", "kind"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the schema is logged, and logs may wrap at a narrow COLUMNS
    for line in ("output kind: category (3 distinct values)", "input title: text (free text",
                 "input size: number (numeric)", "input colour: category (3 distinct values)",
                 "input price: number (numeric)"):
        assert line in out, out
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("auto-pets.csv-")  # model.name auto: the leaderboard
    assert (runs[0] / "schema.yaml").is_file() and (runs[0] / "report.html").is_file()
    assert sorted(p.name for p in (runs[0] / "candidates").iterdir()) == ["linear", "multitask", "ydf_gbt_bfg",
                                                                         "ydf_gbt_rank1", "ydf_gbt_rank1_s05"]
    assert "leaderboard" in out and "ensemble" in out
    assert "accuracy" in out and "baseline_accuracy" in out


def test_prediction_rows_are_checked_and_unseen_categories_counted(table_run, table_csv):
    import tfpilot

    predictor = tfpilot.load(table_run)
    with pytest.raises(InputError, match="row 1 has no column 'title'"):
        predictor.predict([{"photo": str(table_csv.parent / "images" / "0000.png")}])
    with pytest.raises(InputError, match=r"row 2, column .photo.: .*images/missing.png is not a file"):
        predictor.predict(pd.DataFrame({"photo": ["images/0000.png", "images/missing.png"], "title": ["a", "b"]}),
                          base_dir=table_csv.parent)


def test_unseen_category_values_are_counted(tmp_path):
    import tfpilot
    from tests.tables.conftest import table_config

    table = make_table(tmp_path, rows=60, images=False)
    cfg = table_config(table, tmp_path / "run", epochs=1)
    cfg["features"] = {"inputs": ["colour", "size"], "outputs": ["price"]}
    run = tfpilot.train(cfg, report=False)
    predictor = tfpilot.load(run.path)
    out = predictor.predict([{"colour": "red", "size": 1.0}, {"colour": "purple", "size": None}])
    assert predictor.oov_ == {"colour": 1}
    assert all(isinstance(r["price"], float) for r in out)
