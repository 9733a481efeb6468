"""Single-image latency of the MNIST CNN: the seeds' ``model.predict`` vs tfpilot's exports.

All rows are measured in this one process, on the same MNIST test images, one after the
other: ``model.predict`` on one sample (seed 001's ``benchmark_inference``), a direct Keras
call ``model(x, training=False)``, the SavedModel's ``serving_default`` signature, TFLite
float32 and full-integer int8 (LiteRT interpreter) and ONNX Runtime. Each latency is the
p50 (and p99) of ``--runs`` single-image calls after ``--warmup`` calls; the ratio column is
``model.predict`` p50 / the row's p50 (target: the best format >= 50x).

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/inference_latency.py [--run RUN] [--runs 500] [--json out.json]

Without ``--run`` it first trains seed 004's MNIST CNN for one epoch into a temporary folder
(latency does not depend on accuracy). Missing exports of the run are created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("saved_model", "tflite", "tflite-int8", "onnx")
LABELS = {
    "keras model.predict": "model.predict (seeds)",
    "keras direct call": "Keras direct call",
    "saved_model": "SavedModel",
    "tflite": "TFLite fp32",
    "tflite-int8": "TFLite int8",
    "onnx": "ONNX Runtime",
}


def train_run(folder: Path, epochs: int) -> Path:
    from tfpilot.api import train

    return train(None, dataset="mnist", model="mnist_cnn", epochs=epochs, run_dir=folder / "mnist_cnn").path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST CNN run (default: train one for --epochs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500, help="timed single-image calls per format")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "src"))

    from rich.console import Console
    from rich.table import Table

    from tfpilot.export import export
    from tfpilot.export.benchmark import benchmark
    from tfpilot.training.environment import environment

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_run(Path(tmp), args.epochs)
        missing = [f for f in FORMATS if not (run / "export" / f / "bundle.json").is_file()]
        if missing:
            console.print(f"exporting {', '.join(missing)} ...")
            export(run, missing)
        report = benchmark([run / "export" / f for f in FORMATS], runs=args.runs, warmup=args.warmup)

    base = report.rows[0]
    table = Table(title=f"MNIST CNN, single-image latency over {report.runs} calls (after {report.warmup} warm-up)")
    for col in ("way", "p50 ms", "p99 ms", "size", "accuracy", "model.predict p50 / p50"):
        table.add_column(col, justify="left" if col == "way" else "right", no_wrap=col == "way")
    for r in report.rows:
        table.add_row(LABELS.get(r.name, r.name), f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}",
                      f"{r.size_bytes / 1024:,.0f} KB",
                      f"{r.accuracy:.4f}", f"{base.p50_ms / r.p50_ms:,.1f}x")
    console.print(table)
    best = min(report.rows[1:], key=lambda r: r.p50_ms)
    ratio = base.p50_ms / best.p50_ms
    console.print(f"best: {LABELS.get(best.name, best.name)} at {best.p50_ms:.3f} ms, {ratio:,.0f}x faster than "
                  f"model.predict ({base.p50_ms:.1f} ms); target >= 50x: {'met' if ratio >= 50 else 'NOT met'}")
    if args.json:
        env = environment("float32", 0)
        args.json.write_text(json.dumps({**report.to_dict(), "best": best.name, "best_ratio": ratio,
                                         "hardware": env["hardware"], "packages": env["packages"]},
                                        indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
