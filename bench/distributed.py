"""Multi-worker overhead: one process vs `tfpilot launch --workers 2`, same config and global batch.

Every variant trains the same MNIST subset with the same global batch, in a fresh process
(or process set), one after the other in this invocation:

* 1 process, 1 thread   -- the unit the two workers are made of
* 1 process, 2 threads  -- what this 2-core machine does without distribution
* 2 workers x 1 thread  -- MultiWorkerMirroredStrategy over loopback (ring all-reduce)

The figures are steady-state epochs (epoch 0, which traces the step, is left out): steps/s,
examples/s and seconds per epoch from each run's history.csv. ``2 workers / 1 thread`` is the
scaling efficiency of the multi-worker step on one host (ideal 2.0); what it loses is the
gradient all-reduce and the per-step synchronisation.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/distributed.py [--model mnist_cnn] [--epochs 4]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

TFPILOT = [sys.executable, "-m", "tfpilot.cli.main"]


def cpu_kind() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "avx512_bf16" if "avx512_bf16" in flags else "no avx512_bf16"


def train_args(args: argparse.Namespace, run_dir: Path) -> list[str]:
    return ["--dataset", "mnist", "--model", args.model, "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--run-dir", str(run_dir), "--no-report",
            "--set", f"data.train_limit={args.train_limit}", "--set", "data.test_limit=2000",
            "--set", f"train.precision={args.precision}", "--set", "train.callbacks.progress=none",
            "--set", "train.callbacks.tensorboard=false", "--set", "train.callbacks.early_stopping.enabled=false"]


def threads_env(n: int) -> dict[str, str]:
    return {**os.environ, "TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": str(n),
            "OMP_NUM_THREADS": str(n), "TF_CPP_MIN_LOG_LEVEL": "3"}


def measure(run_dir: Path, batch_size: int) -> dict[str, float]:
    rows = list(csv.DictReader((run_dir / "history.csv").open()))[1:]  # epoch 0 traces the step
    metrics = json.loads((run_dir / "metrics.json").read_text())
    n_train = json.loads((run_dir / "data_report.json").read_text())["split_sizes"]["train"]
    seconds = sum(float(r["epoch_seconds"]) for r in rows) / len(rows)
    steps = -(-n_train // batch_size)  # one pass over the train split per epoch
    return {"epoch_s": seconds, "steps_per_s": steps / seconds, "examples_per_s": n_train / seconds,
            "test_accuracy": metrics["test"]["accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mnist_cnn")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, default=12000)
    p.add_argument("--precision", default="float32", help="float32 on both CPU kinds (the default here)")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tfpilot-bench-dist-"))
    variants = [
        ("1 process, 1 thread", ["train"], 1),
        ("1 process, 2 threads", ["train"], 2),
        ("2 workers x 1 thread", ["launch", "--workers", "2", "--threads", "1"], 1),
    ]
    results = {}
    for name, command, threads in variants:
        run_dir = root / name.replace(" ", "_").replace(",", "")
        res = subprocess.run([*TFPILOT, *command, *train_args(args, run_dir)], env=threads_env(threads),
                             capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{name} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        results[name] = measure(run_dir, args.batch_size)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {cpu_kind()}; "
          f"precision {args.precision}; model {args.model}, MNIST {args.train_limit} train images, "
          f"global batch {args.batch_size}, {args.epochs} epochs (epoch 0 excluded)")
    print(f"{'variant':24s} {'s/epoch':>8s} {'steps/s':>8s} {'img/s':>8s} {'test acc':>9s}")
    for name, r in results.items():
        print(f"{name:24s} {r['epoch_s']:8.2f} {r['steps_per_s']:8.2f} {r['examples_per_s']:8.0f} "
              f"{r['test_accuracy']:9.4f}")
    one, two, dist = (results[v[0]] for v in variants)
    print(f"2 workers vs 1 process with 1 thread: {dist['examples_per_s'] / one['examples_per_s']:.2f}x "
          f"(ideal 2.00x); vs 1 process with 2 threads: {dist['examples_per_s'] / two['examples_per_s']:.2f}x")


if __name__ == "__main__":
    main()
