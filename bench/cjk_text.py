"""Text with no flags: tfpilot's default model against scikit-learn's TF-IDF + LogisticRegression,
on the same split, in one invocation.

For each split seed, tfpilot trains with no model named (``tfpilot train --dataset DATA``: the
model, its tokenisation and recipe are chosen from the data, ``training/defaults.py``); the
baseline then reads that run's recorded train / val / test members (``load_run_data``), so
both see the same texts. The baseline is ``TfidfVectorizer(analyzer, ngram_range=(1, 3),
sublinear_tf=True)`` + ``LogisticRegression(C)``, C chosen from 1/3/10/30/100 on the
validation split only; each contender's test accuracy is read once. ``--explicit MODEL``
adds ``--model MODEL`` with its own defaults (e.g. ``ngram_mlp``: what a user got before the
default was chosen from the data) on the same split.

Data (never committed; fetched with the ``fetch`` tool from GitHub snapshots):

* Chinese hotel reviews, ChnSentiCorp_htl_all (7,766 rows, ``label,review``), from
  ``github:SophonPlus/ChineseNlpCorpus``::

      git --git-dir MIRROR/.git show HEAD:datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv \\
          | tail -n +2 > /tmp/cjk/hotel.csv      # headerless, as in issue 27

* English SMS spam (5,572 rows, ``label<TAB>text``, headerless) from
  ``github:justmarkham/pycon-2016-tutorial``: ``git show HEAD:data/sms.tsv > /tmp/cjk/sms.tsv``.

Usage:
    python bench/cjk_text.py /tmp/cjk/hotel.csv --analyzer char --seeds 42 1 2 [--json out.json]
    python bench/cjk_text.py /tmp/cjk/sms.tsv --analyzer word --seeds 42 1 2 --explicit ngram_mlp

Prints per seed and on average: validation and test accuracy of each contender, and the
training seconds (tfpilot: adapt + fit; scikit-learn: vectoriser + classifier fit for the
chosen C), with the CPU kind and the load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import describe, machine  # noqa: E402  (bench/_machine.py: CPU kind, threads, load)

C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)


def run_tfpilot(dataset: str, seed: int, out: Path, model: str | None = None) -> tuple[Path, dict]:
    """Train with no flags but the split seed (and ``model`` when given); returns the run and its metrics."""
    import tfpilot

    cfg = {"data": {"dataset": dataset, "split_seed": seed}, "train": {"seed": seed},
           "output": {"run_dir": str(out)}}
    if model:
        cfg["model"] = {"name": model}
    started = time.perf_counter()
    run = tfpilot.train(cfg, report=False)
    m, resolved = run.metrics, tfpilot.load_config(run.config_file)
    return run.path, {"val": m["val"]["accuracy"], "test": m["test"]["accuracy"], "train_s": m["train_seconds"],
                      "wall_s": round(time.perf_counter() - started, 1), "model": resolved.model.name,
                      "chosen": resolved.chosen}


def run_sklearn(run_dir: Path, analyzer: str) -> dict:
    """TF-IDF 1-3-grams + LogisticRegression on the run's recorded split; C chosen on val."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from tfpilot.data import load_run_data

    data = load_run_data(run_dir, splits=["train", "val", "test"])
    s = data.splits
    texts = {k: [str(t) for t in s[k].x] for k in ("train", "val", "test")}
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 3), sublinear_tf=True)
    started = time.perf_counter()
    xtr = vec.fit_transform(texts["train"])
    vec_s = time.perf_counter() - started
    xva, xte = vec.transform(texts["val"]), vec.transform(texts["test"])
    best = None
    for c in C_GRID:
        t0 = time.perf_counter()
        clf = LogisticRegression(C=c, max_iter=2000).fit(xtr, s["train"].y)
        fit_s = time.perf_counter() - t0
        val = float(np.mean(clf.predict(xva) == s["val"].y))
        if best is None or val > best[0]:
            best = (val, c, clf, fit_s)
    val, c, clf, fit_s = best
    test = float(np.mean(clf.predict(xte) == s["test"].y))
    return {"val": val, "test": test, "C": c, "train_s": round(vec_s + fit_s, 2),
            "sizes": {k: len(s[k]) for k in ("train", "val", "test")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", help="a text table (e.g. /tmp/cjk/hotel.csv)")
    ap.add_argument("--analyzer", default="char", choices=("char", "word", "char_wb"),
                    help="the baseline's TfidfVectorizer analyzer")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--explicit", default=None, help="also train --model MODEL (its own defaults)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    info = machine()
    print(describe(info))
    rows = []
    with tempfile.TemporaryDirectory(prefix="cjk-bench-") as tmp:
        for seed in args.seeds:
            run_dir, tfp = run_tfpilot(args.dataset, seed, Path(tmp) / f"default-{seed}")
            row = {"seed": seed, "tfpilot": tfp, "sklearn": run_sklearn(run_dir, args.analyzer)}
            if args.explicit:
                row["explicit"] = run_tfpilot(args.dataset, seed, Path(tmp) / f"explicit-{seed}", args.explicit)[1]
            rows.append(row)
            print(json.dumps(row))
    names = [k for k in ("tfpilot", "sklearn", "explicit") if k in rows[0]]
    print(f"\n{'contender':<28}{'val':>8}{'test':>8}{'train s':>9}")
    summary = {}
    for k in names:
        mean = {m: sum(r[k][m] for r in rows) / len(rows) for m in ("val", "test", "train_s")}
        summary[k] = mean
        label = {"tfpilot": f"tfpilot default ({rows[0]['tfpilot']['model']})",
                 "sklearn": f"sklearn tfidf {args.analyzer} 1-3 + LR",
                 "explicit": f"tfpilot --model {args.explicit}"}[k]
        print(f"{label:<28}{mean['val']:>8.4f}{mean['test']:>8.4f}{mean['train_s']:>9.1f}")
    gap = 100 * (summary["tfpilot"]["test"] - summary["sklearn"]["test"])
    print(f"tfpilot - sklearn, test, mean of {len(rows)} split(s): {gap:+.2f} points (target: >= -1)")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "dataset": args.dataset, "rows": rows,
                                         "mean": summary}, indent=2))


if __name__ == "__main__":
    main()
