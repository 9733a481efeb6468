"""tfpilot's default on fashion-9k image + productDisplayName -> articleType, against the
strongest linear text baseline, on the same recorded split (issue 27).

One invocation:

1. ``tfpilot train --dataset fashion_9k --target articleType --input image --input
   productDisplayName`` (no other flag: the leaderboard of table models and their ensemble),
   run as a subprocess; its wall and CPU seconds and the load average are recorded, with the
   log's ``chose ...`` lines, ``config.yaml``'s ``chosen`` and ``leaderboard.csv``.
2. The baseline on the rows of that run's ``split.json``: scikit-learn's
   ``TfidfVectorizer(sublinear_tf=True)`` on productDisplayName + ``LinearSVC``. Its analyzer /
   n-gram range and C are chosen on the validation split only (fitted on the train rows, the
   rows tfpilot's models learn from; tfpilot uses val only to stop early and weigh its
   ensemble); the test split is read once, for the chosen setting. A second figure refits the
   chosen setting on train + val (more rows than tfpilot learns from, shown for scale).

``--all-columns`` also runs the literal no-flag command (``--target articleType`` alone: every
other column is an input, subCategory and masterCategory included) and reports it.

Usage:
    TFPILOT_DATA_DIR=/work/shared/datasets nice -n 5 python bench/fashion_default.py --out /tmp/fd
        [--all-columns] [--json results.json] [--tfpilot-args ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: The baseline's settings, chosen on validation: (analyzer, ngram_range) x C.
GRID_NGRAMS = [("char_wb", (1, 5)), ("char_wb", (2, 5)), ("char", (1, 3)), ("char", (1, 5)), ("word", (1, 2))]
GRID_C = [0.1, 0.3, 1.0, 3.0, 10.0]


def run_tfpilot(run_dir: Path, args: list[str]) -> dict[str, Any]:
    """``tfpilot train <args> --run-dir run_dir`` in a subprocess: wall / CPU seconds, load, log."""
    cmd = [sys.executable, "-m", "tfpilot.cli.main", "train", *args, "--run-dir", str(run_dir), "--overwrite"]
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = proc.stdout + proc.stderr
    (run_dir.parent / f"{run_dir.name}.log").write_text(log)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{log[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    chose = [" ".join(m.split()) for m in re.findall(r"chose (.*?)(?=\n\S|\Z)", log, flags=re.S)]
    return {"command": "tfpilot train " + " ".join(args), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "chose_lines": chose}


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run's test / val accuracy, leaderboard rows and config.yaml ``chosen``."""
    import csv

    import yaml

    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    board = list(csv.DictReader((run_dir / "leaderboard.csv").open()))
    head = "articleType"
    return {"test_accuracy": metrics["test"]["heads"][head]["accuracy"],
            "val_accuracy": metrics["val"]["heads"][head]["accuracy"],
            "weights": metrics.get("leaderboard", {}).get("weights"), "leaderboard": board,
            "chosen": config.get("chosen", {}),
            "text_encoder": [i.get("encoder") for i in config["features"]["inputs"] or []
                             if i["name"] == "productDisplayName"]}


def baseline(run_dir: Path) -> dict[str, Any]:
    """TF-IDF + LinearSVC on productDisplayName, on the run's recorded split (see the module docstring)."""
    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from tfpilot.data.paths import extract_archive, find_data_file

    frame = pd.read_csv(extract_archive(find_data_file(["fashion-9k.tar.gz"])) / "fashion-9k" / "fashion_9k.csv")
    splits = json.loads((run_dir / "split.json").read_text())["splits"]
    x = frame["productDisplayName"].fillna("").astype(str).to_numpy()
    y = frame["articleType"].astype(str).to_numpy()
    tr, va, te = (np.asarray(splits[k]) for k in ("train", "val", "test"))

    def fit(analyzer: str, ngrams: tuple[int, int], c: float, rows: np.ndarray) -> tuple[Any, Any, float]:
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True)
        started = time.perf_counter()
        svc = LinearSVC(C=c).fit(vec.fit_transform(x[rows]), y[rows])
        return vec, svc, time.perf_counter() - started

    grid = []
    for analyzer, ngrams in GRID_NGRAMS:
        for c in GRID_C:
            vec, svc, _ = fit(analyzer, ngrams, c, tr)
            grid.append({"analyzer": analyzer, "ngram_range": list(ngrams), "C": c,
                         "val_accuracy": float((svc.predict(vec.transform(x[va])) == y[va]).mean())})
    best = max(grid, key=lambda g: g["val_accuracy"])  # first best: the grid's order breaks ties
    setting = (best["analyzer"], tuple(best["ngram_range"]), best["C"])
    vec, svc, seconds = fit(*setting, tr)
    test = float((svc.predict(vec.transform(x[te])) == y[te]).mean())
    vec2, svc2, _ = fit(*setting, np.concatenate([tr, va]))
    test_trval = float((svc2.predict(vec2.transform(x[te])) == y[te]).mean())
    return {"chosen": best, "test_accuracy": test, "fit_s": round(seconds, 2), "test_accuracy_train_val": test_trval,
            "grid": grid, "rows": {"train": len(tr), "val": len(va), "test": len(te)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/fashion_default"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--all-columns", action="store_true", help="also run --target articleType alone")
    parser.add_argument("--reuse", action="store_true", help="read the runs already in --out (no timings)")
    parser.add_argument("--tfpilot-args", nargs=argparse.REMAINDER, default=[],
                        help="extra flags for the image + text run (a recipe tried on validation)")
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    args = ["--dataset", "fashion_9k", "--target", "articleType", "--input", "image", "--input", "productDisplayName",
            *a.tfpilot_args]
    run_dir = a.out / "image_text"
    ran = {"command": "tfpilot train " + " ".join(args)} if a.reuse else run_tfpilot(run_dir, args)
    results["image_text"] = {**ran, **read_run(run_dir)}
    results["baseline"] = baseline(run_dir)
    if a.all_columns:
        all_dir = a.out / "all_columns"
        all_args = ["--dataset", "fashion_9k", "--target", "articleType"]
        ran = {"command": "tfpilot train " + " ".join(all_args)} if a.reuse else run_tfpilot(all_dir, all_args)
        results["all_columns"] = {**ran, **read_run(all_dir)}
    it, bl = results["image_text"], results["baseline"]
    results["passed"] = it["test_accuracy"] > bl["test_accuracy"]
    print(f"tfpilot default (image + text): test {it['test_accuracy']:.4f} (val {it['val_accuracy']:.4f}), "
          f"{it.get('wall_s')} s wall, {it.get('cpu_s')} CPU s, load {it.get('load_before')} -> {it.get('load_after')}")
    print(f"  weights {it['weights']}")
    for row in it["leaderboard"]:
        print("  ", {k: row[k] for k in row if k in ("candidate", "val_accuracy", "test_accuracy", "fit_s", "weight")})
    print(f"baseline {bl['chosen']}: test {bl['test_accuracy']:.4f} "
          f"(train+val refit {bl['test_accuracy_train_val']:.4f})")
    if "all_columns" in results:
        ac = results["all_columns"]
        print(f"no-flag default (all columns): test {ac['test_accuracy']:.4f} (val {ac['val_accuracy']:.4f}), "
              f"{ac.get('wall_s')} s wall, {ac.get('cpu_s')} CPU s")
    print("passed" if results["passed"] else "NOT passed")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
