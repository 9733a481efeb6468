"""Run tfpilot training commands under ``/usr/bin/time -v`` and report, per run: the memory
plan's estimate beside the measured peak resident memory, wall and CPU seconds, the seconds
per epoch (per 2,000 training images), the parameters and the validation / test accuracy
(docs/bench/defaults.md, issue 27).

Usage::

    python bench/defaults_runs.py NAME -- train --dataset /tmp/fashion-1024 --run-dir /tmp/r1
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    name, args = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    run_dir = Path(args[args.index("--run-dir") + 1])
    load = os.getloadavg()[0]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "400"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "tfpilot.cli.main", *args]
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - start
    text = out.stdout + out.stderr
    log = Path(f"/tmp/defaults-bench-{name}.log")
    log.write_text(text)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) * 1024
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", text).group(1)) for k in ("User", "System"))
    plans = re.findall(r"memory plan: ([\d.]+) GB \(runtime", text)
    row = {"name": name, "rc": out.returncode, "load_at_start": round(load, 2), "wall_s": round(wall, 1),
           "cpu_s": round(cpu, 1), "max_rss_gb": round(rss / 1e9, 2),
           "estimate_gb": float(plans[-1]) if plans else None, "log": str(log)}
    if row["estimate_gb"]:
        row["estimate_over_measured"] = round(row["estimate_gb"] / row["max_rss_gb"], 2)
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        split = json.loads((run_dir / "split.json").read_text())
        n_train = len(split["splits"]["train"])
        hist = list(csv.DictReader((run_dir / "history.csv").open()))
        epoch_s = [float(h["epoch_seconds"]) for h in hist]
        later = sorted(epoch_s[1:]) or epoch_s
        med = later[len(later) // 2]
        val = m.get("val", {})
        test = m.get("test", {})
        row.update(params=m["params"], train_images=n_train, epochs=len(hist),
                   epoch_s=[round(s, 1) for s in epoch_s], median_epoch_s_after_first=round(med, 1),
                   s_per_epoch_per_2000=round(med * 2000 / n_train, 1),
                   val_acc_per_epoch=[round(float(h.get("val_accuracy") or h.get("val_kind_accuracy") or 0), 4)
                                      for h in hist],
                   val_accuracy=val.get("accuracy"), test_accuracy=test.get("accuracy"))
    print(json.dumps(row))
    with open("/tmp/defaults-bench.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
