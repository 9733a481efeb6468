"""tfpilot's default table training against gradient-boosted trees, on the same recorded splits (issue 26).

One invocation runs every contender on four tables, with 5 splits (seeds) each, and reports
each contender's mean and sd:

* **tfpilot**: ``tfpilot train --dataset X --target Y --run-dir RUN --set data.split_seed=S``,
  a whole subprocess with the default preset and no other flag (``--run-dir`` only says where
  the run goes, ``data.split_seed`` which split it is). Its test figure is ``RUN/metrics.json``'s
  (the model the run exports: since issue 26's refit, the ensemble of its members trained again on
  train + val); its candidates' figures come from ``RUN/leaderboard.csv`` when the run wrote one
  (the first fits', on train; ``ensemble`` is their ensemble, ``ensemble_refit`` the run's model).
* **baselines**, each a whole subprocess (import, read the file, fit, predict) fitted on
  EXACTLY the rows of tfpilot's ``RUN/split.json`` -- train+val by default (every row tfpilot
  may learn or choose from; ``--baseline-fit train`` for train alone) -- and scored on its test rows:

  - ``hgb``: scikit-learn's HistGradientBoostingRegressor/Classifier with defaults, prepared
    as ``shared/datasets/README.md`` says: categories ordinal-encoded on the fitting rows,
    those with <= 250 values declared categorical (the others stay ordinal codes), dates as
    day numbers; free text is a category like any other;
  - ``ydf``: YDF's GradientBoostedTreesLearner with defaults (raw columns; dates as day numbers);
  - ``hgb_text`` (tables with free text: petfinder): ``hgb`` on every column with each text
    column as TF-IDF -> TruncatedSVD(32) features fitted on the fitting rows -- the strongest
    competent baseline there.

Tables (files in ``--data-dir``, default ``$TFPILOT_DATA_DIR``) and what "done" means:

==========  ===============================  =========  ==============================================
name        file -> target                   metric     goal (means over the seeds)
==========  ===============================  =========  ==============================================
melbourne   melbourne-housing.csv -> Price   RMSE       tfpilot <= 0.97 x hgb; each tfpilot process <= 300 s
adult       adult.csv -> income_status       accuracy   tfpilot >= hgb
petfinder   petfinder-mini.csv -> Adoption-  accuracy   tfpilot >= the best baseline + 0.01
            Speed (5 classes, 0-4)
auto_mpg    auto-mpg.data -> mpg             MAE        tfpilot <= hgb
==========  ===============================  =========  ==============================================

``auto_mpg`` is tfpilot's built-in dataset of that name (UCI's whitespace-separated file, ``?``
for a missing horsepower); the baselines read the file the same way.

The ensemble check: where ``leaderboard.csv`` has an ``ensemble`` row, on no split is the
ensemble's test figure worse than the best single candidate's by more than one sd of the
ensemble's figure over the splits (the first fits' ensemble against the first fits: the same rows).

Usage (under ``nice``: it keeps 2 cores busy for an hour or more)::

    TFPILOT_DATA_DIR=../shared/datasets nice -n 5 .venv/bin/python bench/tables.py \\
        --json tables.json [--tables melbourne adult] [--seeds 0 1 2 3 4] [--quick] \\
        [--tfpilot-src /path/to/worktree/src] [--reuse]

The baselines' processes run with ``OMP_WAIT_POLICY=PASSIVE``: on a loaded machine (load
above the core count) scikit-learn's OpenMP threads otherwise spin at every barrier, and a
1,400-row HistGradientBoosting fit took 166 s wall and 17 s CPU instead of well under a second.
It changes no figure, only the time.

``--quick`` is a smoke run (one seed, every table cut to 1,500 rows): it checks the harness,
its figures are not results. ``--reuse`` keeps a finished tfpilot run found in ``--out`` (its
timings are then the ones recorded in ``--out``'s previous JSON, or missing).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_info, load_average  # noqa: E402

#: scikit-learn's rule in shared/datasets/README.md: a category with at most this many values is declared categorical.
MAX_CATEGORIES = 250
AUTO_MPG_COLUMNS = ["mpg", "cylinders", "displacement", "horsepower", "weight", "acceleration", "model_year",
                    "origin", "car_name"]
QUICK_ROWS = 1500
SVD_COMPONENTS = 32


@dataclass(frozen=True)
class Table:
    """One benchmark table.

    Attributes:
        file: the file in the data folder.
        target: the column to predict.
        metric: ``rmse``, ``mae`` or ``accuracy`` (tfpilot's metrics.json key).
        dataset: what ``--dataset`` gets (default: the file's path).
        text: free-text columns (``hgb_text`` turns them into TF-IDF -> SVD features).
        dates: day-first date columns (``d/mm/yyyy``): day numbers for the baselines.
        reader: ``csv`` or ``auto_mpg``.
    """

    file: str
    target: str
    metric: str
    dataset: str | None = None
    text: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    reader: str = "csv"

    @property
    def classification(self) -> bool:
        return self.metric == "accuracy"

    @property
    def baselines(self) -> tuple[str, ...]:
        return ("hgb", "ydf", "hgb_text") if self.text else ("hgb", "ydf")


TABLES: dict[str, Table] = {
    "melbourne": Table("melbourne-housing.csv", "Price", "rmse", dates=("Date",)),
    "adult": Table("adult.csv", "income_status", "accuracy"),
    "petfinder": Table("petfinder-mini.csv", "AdoptionSpeed", "accuracy", text=("Description",)),
    "auto_mpg": Table("auto-mpg.data", "mpg", "mae", dataset="auto_mpg", reader="auto_mpg"),
}
NAMES = {"tfpilot": "tfpilot (default)", "hgb": "HistGradientBoosting", "ydf": "YDF GBT",
         "hgb_text": "HGB + TF-IDF/SVD(32)"}
#: The most a whole tfpilot process may take on melbourne (the issue's 5 minutes on 2 cores).
MELBOURNE_WALL_S = 300.0


# -- baselines (run in their own process: `tables.py --baseline KIND ...`) --------------------
def read_frame(path: Path, reader: str) -> Any:
    """The table as tfpilot reads it (same row order, ``?`` missing): rows are split.json's row numbers.

    Example:
        >>> read_frame(Path("adult.csv"), "csv").shape  # doctest: +SKIP
        (45222, 12)
    """
    import pandas as pd

    if reader == "auto_mpg":
        return pd.read_csv(path, sep=r"\s+", header=None, names=AUTO_MPG_COLUMNS, na_values=["?"], quotechar='"')
    frame = pd.read_csv(path, na_values=["?"], skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def day_numbers(values: Any) -> Any:
    """Days since 1970-01-01 of ``d/mm/yyyy`` strings (NaN where unreadable)."""
    import pandas as pd

    when = pd.to_datetime(values, format="%d/%m/%Y", errors="coerce")
    return (when - pd.Timestamp("1970-01-01")).dt.days.astype("float64")


def _text_features(fit: Any, other: Any, column: str) -> tuple[Any, Any]:
    """TF-IDF -> TruncatedSVD(32) of a text column, fitted on ``fit``'s rows."""
    import pandas as pd
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(), TruncatedSVD(SVD_COMPONENTS, random_state=0))
    names = [f"{column}_svd{i}" for i in range(SVD_COMPONENTS)]
    a = pipe.fit_transform(fit[column].fillna("").astype(str))
    b = pipe.transform(other[column].fillna("").astype(str))
    return pd.DataFrame(a, columns=names, index=fit.index), pd.DataFrame(b, columns=names, index=other.index)


def hgb_matrices(fit: Any, test: Any, table: Table, text_as_svd: bool) -> tuple[Any, Any, list[bool]]:
    """Features for HistGradientBoosting, prepared on the fitting rows as the datasets README says.

    Numbers stay numbers; dates become day numbers; every other column is ordinal-encoded on
    ``fit`` (unseen and missing values -> NaN) and declared categorical when it has at most
    250 values; with ``text_as_svd``, text columns become 32 TF-IDF/SVD columns instead.

    Returns:
        ``(X_fit, X_test, categorical mask)``.
    """
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import OrdinalEncoder

    xf, xt, mask = [], [], []
    for col in [c for c in fit.columns if c != table.target]:
        if text_as_svd and col in table.text:
            a, b = _text_features(fit, test, col)
            xf.append(a), xt.append(b), mask.extend([False] * SVD_COMPONENTS)
        elif col in table.dates:
            xf.append(day_numbers(fit[col]).rename(col)), xt.append(day_numbers(test[col]).rename(col))
            mask.append(False)
        elif pd.api.types.is_numeric_dtype(fit[col]):
            xf.append(fit[col].astype("float64")), xt.append(test[col].astype("float64"))
            mask.append(False)
        else:
            enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan)
            a = enc.fit_transform(fit[[col]].astype(object))
            b = enc.transform(test[[col]].astype(object))
            xf.append(pd.Series(a[:, 0], index=fit.index, name=col))
            xt.append(pd.Series(b[:, 0], index=test.index, name=col))
            mask.append(len(enc.categories_[0]) <= MAX_CATEGORIES)
    return pd.concat(xf, axis=1), pd.concat(xt, axis=1), mask


def score(metric: str, y_true: Any, y_pred: Any) -> float:
    """RMSE, MAE or accuracy.

    Example:
        >>> score("rmse", [1.0, 3.0], [1.0, 1.0]), score("accuracy", ["a", "b"], ["a", "a"])
        (1.4142135623730951, 0.5)
    """
    import numpy as np

    t, p = np.asarray(y_true), np.asarray(y_pred)
    if metric == "accuracy":
        return float(np.mean(t.astype(str) == p.astype(str)))
    err = t.astype("float64") - p.astype("float64")
    return float(np.sqrt(np.mean(err**2))) if metric == "rmse" else float(np.mean(np.abs(err)))


def fit_hgb(fit: Any, test: Any, table: Table, text_as_svd: bool) -> Any:
    """Test predictions of HistGradientBoosting with defaults (``random_state=0``)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    x_fit, x_test, mask = hgb_matrices(fit, test, table, text_as_svd)
    kind = HistGradientBoostingClassifier if table.classification else HistGradientBoostingRegressor
    y = fit[table.target].astype(str) if table.classification else fit[table.target].astype("float64")
    model = kind(categorical_features=np.array(mask), random_state=0)
    return model.fit(x_fit, y).predict(x_test)


def fit_ydf(fit: Any, test: Any, table: Table) -> Any:
    """Test predictions of YDF's GradientBoostedTreesLearner with defaults (dates as day numbers)."""
    import numpy as np
    import ydf

    def prepared(frame: Any) -> Any:
        frame = frame.copy()
        for col in table.dates:
            frame[col] = day_numbers(frame[col])
        if table.classification:
            frame[table.target] = frame[table.target].astype(str)
        return frame

    task = ydf.Task.CLASSIFICATION if table.classification else ydf.Task.REGRESSION
    model = ydf.GradientBoostedTreesLearner(label=table.target, task=task).train(prepared(fit), verbose=0)
    pred = np.asarray(model.predict(prepared(test).drop(columns=[table.target])))
    if not table.classification:
        return pred
    classes = np.asarray(model.label_classes())
    return classes[(pred >= 0.5).astype(int)] if pred.ndim == 1 else classes[pred.argmax(axis=1)]


def run_baseline(kind: str, table: Table, data: Path, split_json: Path, fit_on: str) -> dict[str, Any]:
    """One baseline on one recorded split: its test figure, row counts and fit seconds."""
    split = json.loads(split_json.read_text())["splits"]
    frame = read_frame(data, table.reader)
    rows = [i for name in fit_on.split("+") for i in split.get(name, [])]
    fit, test = frame.iloc[rows], frame.iloc[split["test"]]
    start = time.perf_counter()
    if kind == "ydf":
        pred = fit_ydf(fit, test, table)
    else:
        pred = fit_hgb(fit, test, table, text_as_svd=kind == "hgb_text")
    return {"test": score(table.metric, test[table.target], pred), "fit_s": round(time.perf_counter() - start, 3),
            "fit_rows": len(fit), "test_rows": len(test), "table_rows": len(frame)}


# -- subprocesses, timed -------------------------------------------------------------------------
def timed(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``cmd`` to the end: its exit code, wall seconds and CPU seconds (user + sys), the 1-min load before."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = load_average()
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rc": rc, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1m": load, "log": str(log)}


def test_column(header: list[str], metric: str, split: str = "test") -> str | None:
    """The leaderboard column of ``split``'s ``metric``: ``test_rmse`` or ``test_<head>_rmse``."""
    for name in header:
        if re.fullmatch(rf"{split}_(?:.+_)?{metric}", name):
            return name
    return None


def read_leaderboard(run: Path, metric: str) -> list[dict[str, Any]] | None:
    """``RUN/leaderboard.csv`` as ``[{"model", "val", "test", "ensemble", "fit_s"}]``, or None when absent.

    The file has one row per candidate (named in a ``candidate`` or ``model`` column) and a last
    row ``ensemble``; its figures are in ``val_<metric>``/``test_<metric>`` columns
    (``test_<head>_<metric>`` with several heads).
    """
    path = run / "leaderboard.csv"
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return []
    header = list(rows[0])
    name_col = next((c for c in ("candidate", "model") if c in header), header[0])
    t_col, v_col = test_column(header, metric), test_column(header, metric, "val")
    out = []
    for r in rows:
        def num(col: str | None) -> float | None:
            try:
                return float(r[col]) if col and r.get(col) not in (None, "") else None
            except ValueError:
                return None
        out.append({"model": r[name_col], "val": num(v_col), "test": num(t_col),
                    "ensemble": "ensemble" in r[name_col].lower(), "fit_s": num("fit_s")})
    return out


def ensemble_gap(board: list[dict[str, Any]] | None, lower_is_better: bool) -> dict[str, Any] | None:
    """The ensemble's test figure, the best single candidate's and how much worse the ensemble is (>= 0)."""
    if not board:
        return None
    ens = [r for r in board if r["ensemble"] and r["test"] is not None]
    singles = [r for r in board if not r["ensemble"] and r["test"] is not None]
    if not ens or not singles:
        return None
    pick = min if lower_is_better else max
    best = pick(singles, key=lambda r: r["test"])
    e = ens[0]["test"]
    worse = (e - best["test"]) if lower_is_better else (best["test"] - e)
    return {"ensemble": e, "best_single": best["test"], "best_single_model": best["model"], "worse_by": max(worse, 0.0)}


def tfpilot_figure(run: Path, table: Table) -> dict[str, Any]:
    """tfpilot's val/test figure from ``RUN/metrics.json`` (the exported model's)."""
    metrics = json.loads((run / "metrics.json").read_text())
    head = table.target
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        heads = metrics.get(split, {}).get("heads", {})
        value = heads.get(head, next(iter(heads.values()), {})).get(table.metric) if heads else None
        out[split] = None if value is None else float(value)
    out["search_seconds"] = metrics.get("search_seconds")
    out["train_seconds"] = metrics.get("train_seconds")
    return out


@dataclass
class Bench:
    """The settings of one invocation."""

    data_dir: Path
    out: Path
    tfpilot_src: Path
    fit_on: str = "train+val"
    reuse: bool = False
    quick: bool = False
    previous: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TFPILOT_DATA_DIR=str(self.data_dir),
                   PYTHONPATH=str(self.tfpilot_src))
        return env

    def data_file(self, name: str, table: Table) -> Path:
        """The table's file; with --quick, the first 1,500 rows of a CSV (written once under --out)."""
        path = self.data_dir / table.file
        if not self.quick or table.reader != "csv":
            return path
        small = self.out / "quick-data" / table.file
        if not small.is_file():
            small.parent.mkdir(parents=True, exist_ok=True)
            with path.open(encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
            with small.open("w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows(rows[: QUICK_ROWS + 1])
        return small

    def tfpilot(self, name: str, table: Table, seed: int) -> dict[str, Any]:
        run = self.out / name / f"seed{seed}"
        data = self.data_file(name, table)
        dataset = table.dataset or str(data)
        cmd = [sys.executable, "-m", "tfpilot.cli.main", "train", "--dataset", dataset, "--target", table.target,
               "--run-dir", str(run), "--set", f"data.split_seed={seed}"]
        if self.reuse and (run / "metrics.json").is_file() and (run / "split.json").is_file():
            old = self.previous.get(name, {}).get(str(seed), {}).get("tfpilot", {})
            result = {k: old.get(k) for k in ("rc", "wall_s", "cpu_s", "load_1m", "log")} | {"reused": True}
        else:
            shutil.rmtree(run, ignore_errors=True)
            run.parent.mkdir(parents=True, exist_ok=True)
            result = timed(cmd, self.env(), run.parent / f"seed{seed}.tfpilot.log")
        result["command"] = " ".join(cmd[1:])
        result["run"] = str(run)
        if result.get("rc") in (0, None) and (run / "metrics.json").is_file():
            result |= tfpilot_figure(run, table)
            result["leaderboard"] = read_leaderboard(run, table.metric)
            result["ensemble_gap"] = ensemble_gap(result["leaderboard"], table.metric != "accuracy")
        return result

    def baseline(self, kind: str, name: str, table: Table, seed: int) -> dict[str, Any]:
        run = self.out / name / f"seed{seed}"
        data = self.data_file(name, table)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--baseline", kind, "--tables", name,
               "--data", str(data), "--split", str(run / "split.json"), "--baseline-fit", self.fit_on]
        log = run.parent / f"seed{seed}.{kind}.log"
        env = dict(os.environ, PYTHONPATH="", OMP_WAIT_POLICY="PASSIVE")
        result = timed(cmd, env, log)
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
        if result["rc"] == 0 and lines:
            result |= json.loads(lines[-1])
        return result


# -- summary ---------------------------------------------------------------------------------------
def mean_sd(values: list[float | None]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": statistics.fmean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}


def summarize(name: str, table: Table, per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Means and sds of every contender, the goal and whether it holds, timings and the ensemble check."""
    contenders = ["tfpilot", *table.baselines]
    figures = {c: mean_sd([s.get(c, {}).get("test") for s in per_seed.values()]) for c in contenders}
    tf_mean = figures["tfpilot"]["mean"]
    base = {c: figures[c]["mean"] for c in table.baselines if figures[c]["mean"] is not None}
    holds: bool | None = None
    if tf_mean is not None and "hgb" in base:
        if name == "melbourne":
            goal = f"RMSE <= 0.97 x HGB ({0.97 * base['hgb']:,.0f}); each whole process <= {MELBOURNE_WALL_S:.0f} s"
            walls = [s["tfpilot"].get("wall_s") for s in per_seed.values()]
            holds = tf_mean <= 0.97 * base["hgb"] and all(w is not None and w <= MELBOURNE_WALL_S for w in walls)
        elif name == "petfinder":
            best = max(base.values())
            goal = f"accuracy >= best baseline + 0.01 ({best + 0.01:.4f})"
            holds = tf_mean >= best + 0.01
        elif table.metric == "accuracy":
            goal = f"accuracy >= HGB ({base['hgb']:.4f})"
            holds = tf_mean >= base["hgb"]
        else:
            goal = f"{table.metric.upper()} <= HGB ({base['hgb']:.4f})"
            holds = tf_mean <= base["hgb"]
    else:
        goal = "(missing figures)"
    timing = {c: {"wall_s": mean_sd([s.get(c, {}).get("wall_s") for s in per_seed.values()]),
                  "wall_s_median": _median([s.get(c, {}).get("wall_s") for s in per_seed.values()]),
                  "wall_s_max": _max([s.get(c, {}).get("wall_s") for s in per_seed.values()]),
                  "cpu_s": mean_sd([s.get(c, {}).get("cpu_s") for s in per_seed.values()])} for c in contenders}
    gaps = [s["tfpilot"].get("ensemble_gap") for s in per_seed.values() if s.get("tfpilot", {}).get("ensemble_gap")]
    ensemble = None
    if gaps:
        sd = mean_sd([g["ensemble"] for g in gaps])["sd"]
        worst = max(g["worse_by"] for g in gaps)
        ensemble = {"splits": len(gaps), "sd_of_ensemble": sd, "max_worse_by": worst, "holds": worst <= sd,
                    "best_single_models": [g["best_single_model"] for g in gaps]}
    boards: dict[str, list[float]] = {}
    for s in per_seed.values():
        for row in s.get("tfpilot", {}).get("leaderboard") or []:
            if row["test"] is not None:
                boards.setdefault(row["model"], []).append(row["test"])
    candidates = {m: mean_sd(v) for m, v in boards.items()}
    return {"metric": table.metric, "figures": figures, "goal": goal, "holds": holds, "timing": timing,
            "ensemble_check": ensemble, "candidates": candidates}


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _max(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if metric == "rmse" and value > 1000 else (f"{value:.4f}" if metric == "accuracy"
                                                                        else f"{value:,.3f}")


def _pm(metric: str, stats: dict[str, Any] | None, n: bool = False) -> str:
    """``mean ± sd`` (and ``(n=K)``) in the metric's format; "-" when there is none."""
    if not stats or stats["mean"] is None:
        return "-"
    sd = f"{stats['sd']:,.0f}" if stats["mean"] > 1000 else _fmt(metric, stats["sd"])
    return f"{_fmt(metric, stats['mean'])} ± {sd}" + (f" (n={stats['n']})" if n else "")


def markdown(summaries: dict[str, dict[str, Any]], info: dict[str, Any]) -> str:
    """The figures, timings and ensemble check as markdown tables."""
    lines = [f"{info['cpu']} ({info['kind']}), {info['cpu_count']} cores; tfpilot commit {info['commit']}; "
             f"baselines fitted on {info['fit_on']}; seeds {info['seeds']}"
             + ("; QUICK smoke run, not a result" if info.get("quick") else ""), "",
             "| table | metric | " + " | ".join(NAMES[c] for c in ("tfpilot", "hgb", "ydf", "hgb_text"))
             + " | goal | holds |", "|---|---|---:|---:|---:|---:|---|---|"]
    for name, s in summaries.items():
        cells = [_pm(s["metric"], s["figures"].get(c), n=True) for c in ("tfpilot", "hgb", "ydf", "hgb_text")]
        lines.append(f"| {name} | {s['metric']} | " + " | ".join(cells) + f" | {s['goal']} | "
                     f"{'yes' if s['holds'] else ('no' if s['holds'] is False else '-')} |")
    lines += ["", "Whole process (import, read, fit, predict; tfpilot: the whole `tfpilot train`), per split:", "",
              "| table | tfpilot wall s (median / max) | tfpilot CPU s (mean) | HGB wall s (median) | HGB CPU s (mean) "
              "| YDF wall s (median) |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in summaries.items():
        t = s["timing"]

        def g(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"
        lines.append(f"| {name} | {g(t['tfpilot']['wall_s_median'])} / {g(t['tfpilot']['wall_s_max'])} | "
                     f"{g(t['tfpilot']['cpu_s']['mean'])} | {g(t['hgb']['wall_s_median'])} | "
                     f"{g(t['hgb']['cpu_s']['mean'])} | {g(t['ydf']['wall_s_median'])} |")
    boards = {n: s.get("candidates") for n, s in summaries.items() if s.get("candidates")}
    if boards:
        models = list(dict.fromkeys(m for b in boards.values() for m in b))
        lines += ["", "tfpilot's leaderboard.csv, test figure of each candidate (mean ± sd over the splits):", "",
                  "| table | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
        for n, b in boards.items():
            lines.append(f"| {n} | " + " | ".join(_pm(summaries[n]["metric"], b.get(m)) for m in models) + " |")
    checks = {n: s["ensemble_check"] for n, s in summaries.items() if s["ensemble_check"]}
    lines += ["", "Ensemble check (leaderboard.csv: ensemble vs the best single candidate on test, per split):", ""]
    if not checks:
        lines.append("no run wrote a leaderboard.csv with an `ensemble` row")
    else:
        lines += ["| table | splits | worst gap | sd of the ensemble | holds | best single candidates |",
                  "|---|---:|---:|---:|---|---|"]
        for n, c in checks.items():
            m = summaries[n]["metric"]
            lines.append(f"| {n} | {c['splits']} | {_fmt(m, c['max_worse_by'])} | {_fmt(m, c['sd_of_ensemble'])} | "
                         f"{'yes' if c['holds'] else 'no'} | {', '.join(c['best_single_models'])} |")
    return "\n".join(lines)


def commit_of(src: Path) -> str:
    """``git describe``-like id of the tree tfpilot runs from (``+dirty`` with local changes)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, check=False).stdout.strip()
    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return f"{head} ({branch}){' +dirty' if dirty else ''}"


def report_only(state: Path, names: list[str], json_out: Path | None) -> int:
    """Print (and write) the summary of the splits an earlier, maybe interrupted, invocation finished."""
    saved = json.loads(state.read_text())
    info, per_seed = saved["info"], saved["per_seed"]
    summaries = {n: summarize(n, TABLES[n], per_seed[n]) for n in names if per_seed.get(n)}
    info["seeds"] = {n: sorted(int(s) for s in per_seed[n]) for n in summaries}
    text = markdown(summaries, info)
    print(text)
    if json_out:
        json_out.write_text(json.dumps({"info": info, "summary": summaries, "per_seed": per_seed, "markdown": text},
                                       indent=1, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(TABLES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--quick", action="store_true", help="smoke run: one seed, tables cut to 1,500 rows")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--out", type=Path, default=Path("/tmp/tfpilot-bench-tables"), help="runs and logs go here")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TFPILOT_DATA_DIR", "../shared/datasets")))
    ap.add_argument("--tfpilot-src", type=Path, default=repo / "src", help="PYTHONPATH of the tfpilot subprocess")
    ap.add_argument("--tfpilot-commit", help="the commit --tfpilot-src was exported from (default: git asks it)")
    ap.add_argument("--baseline-fit", choices=["train", "train+val"], default="train+val")
    ap.add_argument("--reuse", action="store_true", help="keep finished tfpilot runs found in --out")
    ap.add_argument("--report-only", action="store_true",
                    help="train and fit nothing: summarize the splits --out's results.json holds (an interrupted run)")
    ap.add_argument("--baseline", choices=["hgb", "ydf", "hgb_text"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--split", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.baseline:  # the child process of one baseline fit
        print(json.dumps(run_baseline(args.baseline, TABLES[args.tables[0]], args.data, args.split, args.baseline_fit)))
        return 0

    seeds = args.seeds[:1] if args.quick else args.seeds
    args.out.mkdir(parents=True, exist_ok=True)
    first = args.out / "results.json"  # what --reuse takes tfpilot's timings from
    state = first if args.baseline_fit == "train+val" else args.out / f"results-{args.baseline_fit}.json"
    if args.report_only:
        return report_only(state, args.tables, args.json)
    previous = json.loads(first.read_text()).get("per_seed", {}) if args.reuse and first.is_file() else {}
    bench = Bench(args.data_dir.resolve(), args.out.resolve(), args.tfpilot_src.resolve(), args.baseline_fit,
                  args.reuse, args.quick, previous)
    info = {**cpu_info(), "load_1m_at_start": load_average(), "commit": args.tfpilot_commit or commit_of(bench.tfpilot_src),
            "tfpilot_src": str(bench.tfpilot_src), "fit_on": args.baseline_fit, "seeds": seeds, "quick": args.quick,
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    per_seed: dict[str, dict[str, Any]] = {name: {} for name in args.tables}
    for seed in seeds:  # seeds outside: an interrupted invocation has every table on its first seeds
        for name in args.tables:
            table = TABLES[name]
            record: dict[str, Any] = {"tfpilot": bench.tfpilot(name, table, seed)}
            tf = record["tfpilot"]
            print(f"{name} seed {seed}: tfpilot {table.metric} {_fmt(table.metric, tf.get('test'))} "
                  f"in {tf.get('wall_s')} s wall, {tf.get('cpu_s')} s CPU (load {tf.get('load_1m')})", flush=True)
            if (bench.out / name / f"seed{seed}" / "split.json").is_file():
                for kind in table.baselines:
                    record[kind] = bench.baseline(kind, name, table, seed)
                    b = record[kind]
                    print(f"    {kind}: {_fmt(table.metric, b.get('test'))} in {b['wall_s']} s wall, "
                          f"{b['cpu_s']} s CPU (fit {b.get('fit_s')} s on {b.get('fit_rows')} rows)", flush=True)
            per_seed[name][str(seed)] = record
            state.write_text(json.dumps({"info": info, "per_seed": per_seed}, indent=1, default=str))
    summaries = {name: summarize(name, TABLES[name], per_seed[name]) for name in args.tables}
    info["load_1m_at_end"] = load_average()
    text = markdown(summaries, info)
    print(text)
    result = {"info": info, "summary": summaries, "per_seed": per_seed, "markdown": text}
    state.write_text(json.dumps(result, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
