"""Single-image latency of the MNIST CNN: every Keras way of calling it vs tfpilot's exports.

All rows are measured in this one process, on the same MNIST test images (one uint8 image
per call, numpy in and numpy out), in ``--rounds`` rounds whose order rotates, so a load
change on a shared machine hits every row alike. Keras ways (the baseline is the fastest of
them, not ``model.predict``):

* ``model.predict`` on one sample (seed 001's ``benchmark_inference``);
* ``model.predict_on_batch``;
* ``model(x, training=False)`` eager;
* a ``tf.function`` of the call (``input_signature`` with a dynamic batch, so it is traced
  once), ``jit_compile=False`` and ``jit_compile=True`` (XLA on CPU) -- of the model as
  trained, and of its float32 copy (the exports compute in float32; on a bf16 CPU the bf16
  model may be slower or faster per single image).

Exported formats (SavedModel, TFLite float32 / int8 with the LiteRT interpreter, ONNX
Runtime), each timed three ways: the **raw runtime call** on a preallocated input of the
runtime's dtype (``session.run``, ``set_tensor``/``invoke``/``get_tensor``, the signature on
a ``tf.constant``), tfpilot's **backend runner** (what ``tfpilot.load(...).model`` is) and
tfpilot's **Predictor** (``predict_proba`` on one raw image: input checks, batching,
probabilities). The exported runtimes get ``--threads`` threads (recorded); TensorFlow keeps
its defaults unless ``--tf-threads`` is given.

Headline: (fastest Keras way p50) / (best exported format's p50 through tfpilot's runner);
target >= 20x. ``model.predict`` / best is printed too.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/inference_latency.py [--run RUN] [--runs 1000] [--json out.json]

Without ``--run`` it first trains seed 004's MNIST CNN for one epoch into a temporary folder
(latency does not depend on accuracy). Missing exports of the run are created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FORMATS = ("saved_model", "tflite", "tflite-int8", "onnx")
FORMAT_LABELS = {"saved_model": "SavedModel", "tflite": "TFLite fp32", "tflite-int8": "TFLite int8",
                 "onnx": "ONNX Runtime"}
PREDICT = "model.predict (seeds)"


def train_run(folder: Path, epochs: int) -> Path:
    from tfpilot.api import train

    return train(None, dataset="mnist", model="mnist_cnn", epochs=epochs, run_dir=folder / "mnist_cnn").path


def keras_ways(model: Any, float32_copy: Any, input_shape: tuple[int, ...]) -> dict[str, Callable[[np.ndarray], Any]]:
    """Every way a Keras user calls ``model`` on one image, each numpy in, numpy out."""
    import tensorflow as tf

    spec = [tf.TensorSpec((None, *input_shape), tf.uint8)]
    ways: dict[str, Callable[[np.ndarray], Any]] = {
        PREDICT: lambda x: model.predict(x, verbose=0),
        "model.predict_on_batch": model.predict_on_batch,
        "model(x) eager": lambda x: np.asarray(model(x, training=False)),
    }
    for label, m in (("", model), (", float32 copy", float32_copy)):
        if m is None:
            continue
        for jit in (False, True):
            fn = tf.function(lambda t, m=m: m(t, training=False), input_signature=spec, jit_compile=jit)
            ways[f"tf.function{' XLA' if jit else ''}{label}"] = lambda x, fn=fn: fn(x).numpy()
    return ways


def raw_call(fmt: str, path: Path, sample: np.ndarray, threads: int | None) -> Callable[[np.ndarray], Any]:
    """The runtime's own call on a preallocated input of its dtype (no tfpilot code per call)."""
    from tfpilot.export.backends import detect

    _, artifact = detect(path)
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(artifact), options, providers=["CPUExecutionProvider"])
        first = session.get_inputs()[0]
        dtype = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32}.get(first.type, np.float32)
        feed = {first.name: np.ascontiguousarray(sample.astype(dtype))}
        return lambda _x: session.run(None, feed)[0]
    if fmt.startswith("tflite"):
        from tfpilot.export.tflite import make_interpreter

        interpreter = make_interpreter(artifact, threads)
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], list(sample.shape), strict=False)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        scale, zero = detail["quantization"]
        x = sample.astype(np.float32)
        if scale and np.dtype(detail["dtype"]) == np.int8:
            x = np.clip(np.round(x / scale + zero), -128, 127)
        x = np.ascontiguousarray(x.astype(detail["dtype"]))
        index, out = detail["index"], interpreter.get_output_details()[0]["index"]

        def run(_x: np.ndarray) -> Any:
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)

        return run
    import tensorflow as tf

    loaded = tf.saved_model.load(str(artifact))
    signature = loaded.signatures["serving_default"]
    name = next(iter(signature.structured_input_signature[1]))
    tensor = tf.constant(sample)
    return lambda _x: signature(**{name: tensor})["probabilities"].numpy()


def open_runner(fmt: str, path: Path, threads: int | None) -> Any:
    """tfpilot's backend runner for ``path`` (what ``tfpilot.load(path).model`` is), with threads."""
    from tfpilot.export.backends import resolve
    from tfpilot.export.onnx_format import OnnxRunner
    from tfpilot.export.tflite import TFLiteRunner

    found = resolve(path)
    if found.backend == "onnx":
        return found, OnnxRunner(found.path, found.bundle, threads=threads)
    if found.backend == "tflite":
        return found, TFLiteRunner(found.path, found.bundle, num_threads=threads)
    return found, found.open()


def percentiles(seconds: list[float]) -> dict[str, float]:
    a = np.asarray(seconds) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "calls": int(a.size)}


def timed(fn: Callable[[np.ndarray], Any], samples: np.ndarray, runs: int, warmup: int,
          start: int) -> tuple[list[float], float]:
    """Wall seconds of each of ``runs`` single-image calls of ``fn`` (after ``warmup``), cycling over
    ``samples``, and the process CPU seconds (all threads) those calls took together."""
    n = len(samples)
    for i in range(warmup):
        fn(samples[(start + i) % n][None])
    out = []
    cpu = time.process_time()
    for i in range(runs):
        x = samples[(start + i) % n][None]
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out, time.process_time() - cpu


def accuracy(fn: Callable[[np.ndarray], Any], x: np.ndarray, y: np.ndarray, batch: int = 250) -> float:
    probs = np.concatenate([np.asarray(fn(x[i : i + batch])) for i in range(0, len(x), batch)])
    return float(np.mean(probs.reshape(len(x), -1).argmax(1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained MNIST CNN run (default: train one for --epochs)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--runs", type=int, default=1000, help="timed single-image calls per way (all rounds)")
    parser.add_argument("--predict-runs", type=int, default=150, help="timed calls of model.predict (~60 ms each)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls per way and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the ways' order rotating")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of ONNX Runtime and the TFLite interpreter (0: their defaults)")
    parser.add_argument("--tf-threads", type=int, default=None,
                        help="TensorFlow intra-op threads (default: TensorFlow's, one per core)")
    parser.add_argument("--limit", type=int, default=2000, help="test images for latency inputs and accuracy")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(HERE))

    import tensorflow as tf

    if args.tf_threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads)
    from rich.console import Console
    from rich.table import Table

    from _machine import describe, machine
    from tfpilot.export import export
    from tfpilot.export.data import load_split
    from tfpilot.export.source import float32_model
    from tfpilot.inference import Predictor
    from tfpilot.runs import Run

    threads = args.threads or None
    console = Console(width=max(150, Console().width))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or train_run(Path(tmp), args.epochs)
        missing = [f for f in FORMATS if not (run_dir / "export" / f / "bundle.json").is_file()]
        if missing:
            console.print(f"exporting {', '.join(missing)} ...")
            export(run_dir, missing)
        x, y = load_split(run_dir, "test", limit=args.limit)
        model = Run(run_dir).load_model()
        policies = {layer.dtype_policy.name for layer in model.layers if hasattr(layer, "dtype_policy")}
        policy = next((p for p in sorted(policies) if p.startswith("mixed")), "float32")
        copy = float32_model(model)
        ways: dict[str, dict[str, Any]] = {}
        for name, fn in keras_ways(model, copy if copy is not model else None, x.shape[1:]).items():
            ways[name] = {"group": "keras", "fn": fn, "precision": "float32" if "float32" in name else policy}
        for fmt in FORMATS:
            path = run_dir / "export" / fmt
            found, runner = open_runner(fmt, path, threads)
            predictor = Predictor(runner, found.bundle.class_names, found.bundle.input_spec)
            precision = "int8" if fmt == "tflite-int8" else "float32"
            label = FORMAT_LABELS[fmt]
            ways[f"{label}: raw runtime call"] = {"group": fmt, "fn": raw_call(fmt, path, x[:1], threads),
                                                  "precision": precision, "raw": True}
            ways[f"{label}: tfpilot runner"] = {"group": fmt, "fn": runner, "precision": precision}
            ways[f"{label}: tfpilot Predictor"] = {"group": fmt, "precision": precision,
                                                   "fn": lambda b, p=predictor: p.predict_proba(b[0]),
                                                   "batch_fn": predictor.predict_proba}
        broken = {}
        for name, way in ways.items():
            if way.get("raw"):
                way["accuracy"] = None
                continue
            try:
                way["accuracy"] = accuracy(way.get("batch_fn", way["fn"]), x, y)
            except (tf.errors.OpError, ValueError, RuntimeError) as exc:  # e.g. XLA refusing an op
                broken[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        for name, why in broken.items():
            console.print(f"[yellow]{name}: does not run here ({why}); left out[/]")
            ways.pop(name)
        info = machine(precision={"keras model": policy, "exports": "float32 (tflite-int8: int8)"},
                       threads={"onnxruntime intra_op": threads or "default",
                                "tflite interpreter": threads or "default"})
        console.print(describe(info))

        names = list(ways)
        times: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, float] = dict.fromkeys(names, 0.0)
        round_p50: dict[str, list[float]] = {n: [] for n in names}  # per round: the ratio's median of rounds
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                n = args.predict_runs if name == PREDICT else args.runs
                walls, cpu_s = timed(ways[name]["fn"], x, max(1, n // args.rounds), args.warmup, start=r * 97)
                times[name] += walls
                cpu[name] += cpu_s
                round_p50[name].append(float(np.percentile(walls, 50)) * 1e3)

    rows = []
    for name in names:
        rows.append({"way": name, "group": ways[name]["group"], "precision": ways[name]["precision"],
                     "accuracy": ways[name]["accuracy"], **percentiles(times[name]),
                     "cpu_ms_per_call": cpu[name] / len(times[name]) * 1e3, "round_p50_ms": round_p50[name]})
    keras_rows = [r for r in rows if r["group"] == "keras"]
    fastest_keras = min(keras_rows, key=lambda r: r["p50_ms"])
    predict_row = next(r for r in rows if r["way"] == PREDICT)
    runner_rows = [r for r in rows if r["way"].endswith("tfpilot runner")]
    best = min(runner_rows, key=lambda r: r["p50_ms"])
    for r in rows:
        r["fastest_keras_over_this"] = fastest_keras["p50_ms"] / r["p50_ms"]

    table = Table(title=f"MNIST CNN, single-image latency, {args.rounds} rounds (order rotating), "
                        f"{args.runs} calls per way ({args.predict_runs} for model.predict)")
    for col in ("way", "precision", "p50 ms", "p90 ms", "p99 ms", "CPU ms/call", "accuracy",
                "fastest Keras p50 / p50"):
        table.add_column(col, justify="left" if col in ("way", "precision") else "right", no_wrap=col == "way")
    for r in rows:
        table.add_row(r["way"], r["precision"], f"{r['p50_ms']:.3f}", f"{r['p90_ms']:.3f}", f"{r['p99_ms']:.3f}",
                      f"{r['cpu_ms_per_call']:.3f}",
                      "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}",
                      f"{r['fastest_keras_over_this']:,.1f}x")
    console.print(table)
    ratio = fastest_keras["p50_ms"] / best["p50_ms"]
    # The same ratio within each round (fastest Keras way of that round / the best runner of that
    # round), so a load spike in one round shows as one outlier beside the median.
    per_round = [min(r["round_p50_ms"][i] for r in keras_rows) / min(r["round_p50_ms"][i] for r in runner_rows)
                 for i in range(args.rounds)]
    console.print(f"per round, fastest Keras p50 / best runner p50: "
                  f"{', '.join(f'{v:.1f}x' for v in per_round)} (median {float(np.median(per_round)):.1f}x)")
    console.print(f"fastest Keras way: {fastest_keras['way']} at {fastest_keras['p50_ms']:.3f} ms; "
                  f"best export: {best['way']} at {best['p50_ms']:.4f} ms -> {ratio:,.1f}x "
                  f"(target >= 20x: {'met' if ratio >= 20 else 'NOT met'}); "
                  f"model.predict / best: {predict_row['p50_ms'] / best['p50_ms']:,.0f}x")
    console.print(describe(machine(precision=info["precision"], threads=info["threads"])))
    if args.json:
        args.json.write_text(json.dumps({
            "run": str(run_dir), "rounds": args.rounds, "runs": args.runs, "predict_runs": args.predict_runs,
            "warmup": args.warmup, "rows": rows, "fastest_keras": fastest_keras["way"], "best": best["way"],
            "ratio_fastest_keras_over_best": ratio, "ratio_per_round": per_round,
            "ratio_median_of_rounds": float(np.median(per_round)), "ratio_predict_over_best": predict_row["p50_ms"] / best["p50_ms"],
            "left_out": broken, "machine": info,
        }, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
