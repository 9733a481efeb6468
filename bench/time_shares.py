"""How a table leaderboard spends a time limit that binds: two source trees, alternated per split,
in one invocation (``docs/bench/refit.md``).

For each split seed and each source tree, one whole ``tfpilot train --dataset TABLE --target COL
--time-limit T --set data.split_seed=S`` process. A limit below the preset's budget stands in for
a slower machine (half the budget: a machine about twice as slow). From each run's log and
``leaderboard.csv``, per candidate: its share of the limit ("about N s of the time limit"), its
fit seconds, and whether it was cut (fit seconds at 97% of its share or more: a forest's learner
stops at the first tree past it, a neural candidate after the epoch that passes it); per run: the
first fits' ensemble's validation figure (its weights were chosen on those rows: a comparison,
not an estimate), the run's model's test figure and the wall time.

Usage::

    git archive fd600b9 src | tar -x -C /tmp/ts/before && git archive HEAD src | tar -x -C /tmp/ts/after
    python bench/time_shares.py --dataset ../shared/datasets/melbourne-housing.csv --target Price \\
        --metric rmse --time-limit 145 --seeds 1 2 3 --src before=/tmp/ts/before/src \\
        --src after=/tmp/ts/after/src --out /tmp/ts/runs
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: A candidate that trained this share of its time share or more was cut by it.
CUT = 0.97


def _shares(log: str) -> dict[str, float]:
    """Candidate -> its share of the time limit, from the leaderboard's "training X (model), about
    N s of the time limit" lines (the log may wrap them)."""
    flat = re.sub(r"\s+", " ", log)
    return {m[0]: float(m[1]) for m in re.findall(r"leaderboard: training (\S+) \(\S+\), about (\d+) s of the", flat)}


def one_run(src: str, args: argparse.Namespace, seed: int, run_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": src, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "tfpilot.cli.main", "train", "--dataset", args.dataset, "--target", args.target,
           "--time-limit", str(args.time_limit), "--set", f"data.split_seed={seed}", "--run-dir", str(run_dir)]
    load, start = os.getloadavg()[0], time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    (run_dir.parent / f"{run_dir.name}.log").write_text(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(f"{cmd} failed:\n{(out.stdout + out.stderr)[-3000:]}")
    rows = {r["candidate"]: r for r in csv.DictReader((run_dir / "leaderboard.csv").open())}
    shares = _shares(out.stdout + out.stderr)
    cut = sorted(n for n, s in shares.items() if n in rows and float(rows[n]["fit_s"]) >= CUT * s)
    m = args.metric
    return {"wall_s": wall, "load": load, "cut": cut,
            "fits": {n: (round(float(rows[n]["fit_s"]), 1), s) for n, s in shares.items() if n in rows},
            "val": float(rows["ensemble"][f"val_{m}"]),
            "test": float(rows["ensemble_refit" if "ensemble_refit" in rows else "ensemble"][f"test_{m}"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--metric", default="rmse", help="leaderboard.csv's figure: rmse, mae, accuracy, ...")
    ap.add_argument("--time-limit", type=float, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--src", action="append", required=True, help="NAME=PATH of a tfpilot src tree")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    srcs = dict(s.split("=", 1) for s in args.src)
    results: dict[str, list[dict]] = {name: [] for name in srcs}
    for seed in args.seeds:
        for name, src in srcs.items():
            r = one_run(src, args, seed, args.out / f"{name}-seed{seed}")
            results[name].append(r)
            print(f"seed {seed} {name}: val {r['val']:,.4f} test {r['test']:,.4f} wall {r['wall_s']:.1f} s "
                  f"(load {r['load']:.2f}); cut: {', '.join(r['cut']) or 'none'}; fit s / share s: {r['fits']}",
                  flush=True)
    print(f"\n| code | splits | candidates cut | first fits' ensemble, val {args.metric} (mean) | "
          f"run's model, test {args.metric} (mean) | wall s (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rs in results.items():
        val, test = statistics.mean(r["val"] for r in rs), statistics.mean(r["test"] for r in rs)
        print(f"| {name} | {len(rs)} | {sum(len(r['cut']) for r in rs)} | {val:,.4f} | {test:,.4f} | "
              f"{statistics.median(r['wall_s'] for r in rs):.1f} |")


if __name__ == "__main__":
    main()
