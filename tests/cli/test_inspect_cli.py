"""``tfpilot inspect`` from the command line: a table's column checks (types, missing, constant,
id-like, single-column leakage) and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from tfpilot.cli.main import app


def _table(path: Path, rows: int = 150) -> Path:
    import pandas as pd

    rng = np.random.default_rng(0)
    churn = rng.integers(0, 2, rows)
    age = rng.normal(40, 10, rows).round(4)
    age[::15] = np.nan
    pd.DataFrame({
        "customer_id": rng.permutation(10_000)[:rows], "shop": "main", "age": age,
        "city": rng.choice(["paris", "lyon", "nice"], rows), "cancel_reason": np.where(churn, "moved", "none"),
        "churn": np.where(churn, "yes", "no"),
    }).to_csv(path, index=False)
    return path


def test_inspect_a_table_names_its_problem_columns(tmp_path: Path) -> None:
    table = _table(tmp_path / "customers.csv")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["inspect", str(table), "--target", "churn", "--out", str(out),
                                      "--no-label-issues"])
    assert result.exit_code == 0, result.output
    assert "leaky columns: cancel_reason" in result.output
    found = json.loads((out / "inspect.json").read_text())
    cols = found["columns"]
    assert cols["target"] == "churn" and cols["leaky"] == ["cancel_reason"]
    assert cols["constant"] == ["shop"] and cols["id_like"] == ["customer_id"]
    by_name = {c["name"]: c for c in cols["columns"]}
    assert by_name["age"]["missing"] == 10 and by_name["age"]["missing_rows"][:2] == [1, 16]
    assert by_name["churn"]["role"] == "output" and by_name["age"]["type"] == "number"
    # rows equal in every model input (the id is no input): only rows without an age can be
    missing = {f"row {r}" for r in by_name["age"]["missing_rows"]}
    pairs = found["duplicates"]["exact"]["pairs"]
    assert pairs and all({p["a"]["id"], p["b"]["id"]} <= missing for p in pairs)
    assert "label_issues" not in found
    assert set(found["counts"]["per_split"]) == {"train", "val", "test"}
    html = (out / "inspect.html").read_text()
    assert "cancel_reason" in html and "LEAK" in html


def test_inspect_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "error:" in result.output


def test_flipped_labels_of_a_table_are_label_issues(tmp_path: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 300
    x, c = rng.normal(size=n), rng.choice(["a", "b", "c"], n)
    y = np.where(x + (c == "a") * 1.5 > 0.5, "yes", "no")
    flipped = rng.choice(n, 15, replace=False)  # 5%
    y[flipped] = np.where(y[flipped] == "yes", "no", "yes")
    pd.DataFrame({"x": x, "c": c, "z": rng.normal(size=n), "y": y}).to_csv(tmp_path / "t.csv", index=False)
    result = CliRunner().invoke(app, ["inspect", str(tmp_path / "t.csv"), "--target", "y", "--out",
                                      str(tmp_path / "out"), "--folds", "3"])
    assert result.exit_code == 0, result.output
    issues = json.loads((tmp_path / "out" / "inspect.json").read_text())["label_issues"]
    assert issues["method"].startswith("3-fold ydf_gbt")
    found = {e["id"] for e in issues["issues"]}
    planted = {f"row {r + 1}" for r in flipped}
    assert len(found & planted) >= 0.9 * len(planted) and len(found) <= 2 * len(planted)
