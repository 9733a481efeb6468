"""Whole-process time of one table leaderboard (``tfpilot train --dataset TABLE --target COL``,
no other flag) under two source trees, alternated in one invocation: wall and CPU seconds of
each process, the load average at its start, and what its runs spent preparing data (the
``data_prep_s`` of every candidate, fold and refit run, read from their ``metrics.json``).

Usage::

    git archive a3a4147 src | tar -x -C /tmp/before && git archive HEAD src | tar -x -C /tmp/after
    python bench/table_overhead.py --dataset ../shared/datasets/adult.csv --target income_status \\
        --src before=/tmp/before/src --src after=/tmp/after/src --runs 3 --out /tmp/overhead
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _prep_seconds(run: Path) -> tuple[float, int]:
    """The data preparation of every run under ``run`` (candidates, folds, refits) and their count."""
    seconds = [json.loads(p.read_text()).get("data_prep_s", 0.0) for p in run.rglob("metrics.json") if p.parent != run]
    return float(sum(seconds)), len(seconds)


def one_run(src: str, dataset: str, target: str, run_dir: Path) -> dict[str, float]:
    """One ``tfpilot train`` process on ``src``; its wall and CPU seconds and data preparation."""
    env = {**os.environ, "PYTHONPATH": src, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "tfpilot.cli.main", "train", "--dataset", dataset, "--target", target,
           "--run-dir", str(run_dir), "--no-report"]
    load = os.getloadavg()[0]
    cpu, start = _children_cpu(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    (run_dir.parent / f"{run_dir.name}.log").write_text(out.stdout + out.stderr)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(out.stdout + out.stderr)[-3000:]}")
    prep, runs = _prep_seconds(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    head = next(iter(metrics.get("test", {}).get("heads", {}).values()), {})
    figure = head.get("accuracy", head.get("rmse"))
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_at_start": round(load, 2),
            "data_prep_s": round(prep, 1), "runs": runs, "test": figure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--src", action="append", required=True, help="NAME=PATH of a tfpilot src tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    trees = dict(s.split("=", 1) for s in args.src)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for i in range(args.runs):
        for name, src in trees.items():  # alternated: a drift of the machine falls on both
            row = one_run(src, args.dataset, args.target, args.out / f"{name}-{i}")
            rows[name].append(row)
            print(json.dumps({"tree": name, "run": i, **row}), flush=True)
    summary = {name: {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "data_prep_s")}
               for name, runs in rows.items()}
    names = list(trees)
    if len(names) == 2:
        a, b = names
        summary["ratio"] = {k: round(summary[b][k] / summary[a][k], 3) for k in ("wall_s", "cpu_s")}
    (args.out / "summary.json").write_text(json.dumps({"runs": rows, "median": summary}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
