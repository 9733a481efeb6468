"""``tfpilot inspect`` on CIFAR-10 (``cifar10-jpg``, 60,000 JPEG files): wall and CPU time, and what it found.

Runs ``tfpilot inspect DATA --out OUT`` once in a child process under ``/usr/bin/time -v``
(CPU seconds beside wall), with the load average before and after and the CPU kind, and prints
the counts found, the phases' wall times (hashing, duplicate search, the K-fold model) and the
top findings. One run, not a median of 3: a run is minutes of the shared machine.

Usage:
    python bench/inspect_cifar.py --data ../shared/datasets/cifar10-jpg.tar.gz --out /tmp/inspect-cifar
    python bench/inspect_cifar.py --data ... --out ... -- --folds 4 --epochs 4   # extra inspect flags
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_info, load_average  # noqa: E402


def _time_v(stderr: str) -> dict[str, float]:
    out = {}
    for key, pattern in (("user_s", r"User time \(seconds\): ([\d.]+)"), ("sys_s", r"System time \(seconds\): ([\d.]+)"),
                         ("max_rss_mb", r"Maximum resident set size \(kbytes\): (\d+)")):
        m = re.search(pattern, stderr)
        if m:
            out[key] = float(m.group(1)) / (1024 if key == "max_rss_mb" else 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="cifar10-jpg.tar.gz or its extracted folder")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--nice", type=int, default=5)
    parser.add_argument("extra", nargs="*", help="more `tfpilot inspect` flags (after --)")
    args = parser.parse_args()
    cmd = ["nice", "-n", str(args.nice), "/usr/bin/time", "-v", sys.executable, "-m", "tfpilot.cli.main", "inspect",
           args.data, "--out", str(args.out), *args.extra]
    load_before = load_average()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wall = time.perf_counter() - start
    load_after = load_average()
    (args.out / "bench.log").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        sys.exit(f"inspect failed ({proc.returncode}); see {args.out / 'bench.log'}")
    found = json.loads((args.out / "inspect.json").read_text())
    d, li = found["duplicates"], found.get("label_issues", {})
    result = {
        "command": " ".join(cmd[4:]), "cpu": cpu_info(), "load_before": load_before, "load_after": load_after,
        "wall_s": round(wall, 1), **_time_v(proc.stderr), "timings": found["timings"],
        "label_issue_seconds": li.get("seconds"), "examples": found["examples"], "unreadable": len(found["unreadable"]),
        "exact_pairs": {k: d["exact"][k] for k in ("count", "cross_split", "labels_differ")},
        "near_pairs": {k: d["near"][k] for k in ("count", "cross_split", "labels_differ")},
        "leaks": d["leaks"], "label_issues": li.get("count"), "label_method": li.get("method"),
        "fold_accuracy": li.get("fold_accuracy"), "out_of_sample_accuracy": li.get("out_of_sample_accuracy"),
        "top_label_issues": [(e["id"], e["given"], e["suggested"], e["p_given"]) for e in li.get("issues", [])[:15]],
        "top_cross_split": [(p["a"]["id"], p["b"]["id"], p.get("distance")) for p in
                            sorted(d["exact"]["pairs"] + d["near"]["pairs"], key=lambda p: p.get("distance", 0))
                            if p["cross_split"]][:15],
    }
    (args.out / "bench.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
