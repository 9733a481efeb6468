"""Time to 99.0% MNIST test accuracy: seed 004's script as written vs ``configs/mnist_fast.yaml``.

Three contenders, so the table separates what tfpilot's recipe buys from what its model buys:

* ``seed``: seed 004's script as written (its CNN, Adam 1e-3, batch 128, its callbacks; float32);
* ``seed-arch``: seed 004's *architecture* (tfpilot's registered ``mnist_cnn``: the seed's
  layers, 130,890 parameters) trained by tfpilot with ``configs/mnist_fast.yaml``'s recipe
  (its optimizer, schedule, batch, label smoothing, precision) -- only the model swapped;
* ``tfpilot``: ``configs/mnist_fast.yaml`` as it is (``fast_cnn``).

All run in this one invocation, on the same machine and the same data (the local
``mnist.npz``), each in its own fresh Python process, alternating when ``--repeats`` > 1.
After every epoch the full 10,000-image test set is evaluated; the evaluation time is
*excluded* from the clock, which starts when ``model.fit`` begins. Validation, callbacks and
everything else the script does inside ``fit`` are included, for both.

The seed script (``bench/seeds/seed004_mnist_cnn.py``) runs unchanged: the harness only
points ``tf.keras.datasets.mnist.load_data`` at the local file and appends the timing
callback to its ``model.fit`` call.

``--precision float32`` forces float32 on tfpilot's side (``train.precision=float32``; the seed
script computes in float32 anyway): on a bf16 CPU this stands in for the AVX2-only kind.
``--set KEY=VALUE`` overrides go to both tfpilot contenders (``model.*`` ones to ``tfpilot`` only).
The CPU model, ``avx512_bf16`` yes/no, each side's precision and TensorFlow's thread counts are
printed and recorded in ``--json`` (``bench/_machine.py``).

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/mnist_time_to_accuracy.py [--repeats 3] [--full] \
        [--precision auto|float32] [--contenders seed seed-arch tfpilot] [--json out.json]

Prints one line per epoch, a summary table, and the ratios tfpilot / seed and seed-arch / seed
(target for tfpilot <= 0.25).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED_SCRIPT = HERE / "seeds" / "seed004_mnist_cnn.py"
FAST_CONFIG = ROOT / "configs" / "mnist_fast.yaml"
CONTENDERS = ("seed", "seed-arch", "tfpilot")
#: seed-arch: mnist_fast.yaml's recipe with the seed's model (tfpilot's ``mnist_cnn`` has its layers)
SEED_ARCH_MODEL = ("model.name=mnist_cnn", "model.params={}")


def mnist_path() -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from tfpilot.data.paths import find_data_file

    path = find_data_file(["mnist.npz"])
    if path is None:
        sys.exit("mnist.npz not found: set TFPILOT_DATA_DIR (e.g. ../shared/datasets)")
    return path


def make_timer(x_test, y_test, target: float, stop_at_target: bool):
    """A Keras callback recording (train seconds, test accuracy) after every epoch."""
    import keras
    import numpy as np

    class TimeToAccuracy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0, self.excluded, self.epochs, self.reached = time.perf_counter(), 0.0, [], None
            self.c0, self.excluded_cpu, self.reached_cpu = time.process_time(), 0.0, None

        def on_epoch_end(self, epoch, logs=None):
            t, c = time.perf_counter(), time.process_time()
            train_s, cpu_s = t - self.t0 - self.excluded, c - self.c0 - self.excluded_cpu
            probs = self.model.predict(x_test, batch_size=1000, verbose=0)
            acc = float(np.mean(np.argmax(probs, axis=1) == y_test))
            self.excluded += time.perf_counter() - t
            self.excluded_cpu += time.process_time() - c
            self.epochs.append({"epoch": epoch + 1, "train_seconds": round(train_s, 3),
                                "cpu_seconds": round(cpu_s, 3), "test_accuracy": acc})
            print(f"  epoch {epoch + 1}: {train_s:7.2f} s ({cpu_s:7.2f} CPU s)  test accuracy {acc:.4f}", flush=True)
            if self.reached is None and acc >= target:
                self.reached, self.reached_cpu = train_s, cpu_s
                if stop_at_target:
                    self.model.stop_training = True

        def result(self):
            return {"seconds_to_target": self.reached, "cpu_seconds_to_target": self.reached_cpu,
                    "epochs": self.epochs,
                    "final_test_accuracy": self.epochs[-1]["test_accuracy"] if self.epochs else None}

    return TimeToAccuracy()


def run_seed(target: float, stop_at_target: bool) -> dict:
    """Execute the seed script as written, timing its model.fit."""
    import numpy as np
    import tensorflow as tf

    data = np.load(mnist_path())
    tf.keras.datasets.mnist.load_data = lambda *a, **k: (
        (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"]))
    timer = make_timer((data["x_test"][..., None] / 255.0).astype("float32"), data["y_test"], target, stop_at_target)
    original_fit = tf.keras.Model.fit

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), timer]
        kwargs["verbose"] = 0
        return original_fit(self, *args, **kwargs)

    tf.keras.Model.fit = fit
    workdir = tempfile.mkdtemp(prefix="seed004-")
    os.chdir(workdir)  # the script writes best_model.keras, logs/, mnist_cnn.keras
    code = compile(SEED_SCRIPT.read_text(), str(SEED_SCRIPT), "exec")
    exec(code, {"__name__": "__main__"})
    import keras

    return {**timer.result(), "precision": keras.mixed_precision.dtype_policy().name, "machine": child_machine()}


def child_machine() -> dict:
    sys.path.insert(0, str(HERE))
    from _machine import machine

    return machine()


def run_tfpilot(target: float, stop_at_target: bool, overrides: list[str]) -> dict:
    """Train configs/mnist_fast.yaml (with ``overrides``) through tfpilot's normal fit path."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from tfpilot.config import load_config
    from tfpilot.training import Trainer

    data = np.load(mnist_path())
    timer = make_timer(data["x_test"][..., None], data["y_test"], target, stop_at_target)
    run_dir = Path(tempfile.mkdtemp(prefix="tfpilot-fast-")) / "run"
    cfg = load_config(FAST_CONFIG, overrides=["train.callbacks.progress=none", *overrides], run_dir=run_dir)
    trainer = Trainer(cfg, callbacks=[timer]).fit()
    out = timer.result()
    out["precision"] = trainer.precision_
    out["model"] = cfg.model.name
    out["model_params"] = int(trainer.model_.count_params())
    out["batch_size"] = cfg.train.batch_size
    out["run_test_accuracy"] = trainer.run_.metrics["test"]["accuracy"]
    out["machine"] = child_machine()
    return out


def tfpilot_overrides(which: str, precision: str, sets: list[str]) -> list[str]:
    """The ``--set`` overrides of one tfpilot contender."""
    out = [] if precision == "auto" else [f"train.precision={precision}"]
    if which == "seed-arch":
        return [*out, *(s for s in sets if not s.startswith("model.")), *SEED_ARCH_MODEL]
    return [*out, *sets]


def child(which: str, args: argparse.Namespace) -> None:
    stop = not args.full
    if which == "seed":
        result = run_seed(args.target, stop)
    else:
        result = run_tfpilot(args.target, stop, tfpilot_overrides(which, args.precision, args.set))
    print("RESULT " + json.dumps(result), flush=True)


def spawn(which: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--target", str(args.target), "--precision", args.precision]
    cmd += [f"--set={s}" for s in args.set]
    if args.full:
        cmd.append("--full")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    print(f"== {which} ==", flush=True)
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("  epoch"):
            print(line, flush=True)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        sys.exit(f"{which} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(results[-1][len("RESULT "):])
    result["load_at_start"] = load
    print(f"  load average at start {load:.2f}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--repeats", type=int, default=1, help="alternate seed/tfpilot this many times")
    ap.add_argument("--full", action="store_true", help="train to the end instead of stopping at the target")
    ap.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16"], default="auto",
                    help="tfpilot's precision (float32: both sides float32, the AVX2-only kind's stand-in; "
                         "the seed script always computes in float32)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the tfpilot contenders (repeatable; model.* ones: tfpilot only)")
    ap.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args)
        return
    mnist_path()
    sys.path.insert(0, str(HERE))
    from _machine import describe, machine

    print(describe(machine(precision={"seed": "float32", "tfpilot": args.precision})) + " (TensorFlow's: per child, "
          "at the end)", flush=True)
    runs: dict[str, list[dict]] = {which: [] for which in args.contenders}
    for r in range(args.repeats):
        order = args.contenders[r % len(args.contenders):] + args.contenders[: r % len(args.contenders)]
        for which in order:
            runs[which].append(spawn(which, args))
    print()
    print(f"{'':10} {'seconds to ' + format(args.target, '.1%'):>20} {'epochs':>9} {'precision':>15} "
          f"{'final test acc':>15}")
    summary = {}
    for which, rs in runs.items():
        secs = [r["seconds_to_target"] for r in rs]
        ok = [s for s in secs if s is not None]
        med = statistics.median(ok) if len(ok) == len(secs) else None
        epochs = [next((e["epoch"] for e in r["epochs"] if e["test_accuracy"] >= args.target), None) for r in rs]
        per_epoch = []
        for r in rs:
            ends = [e["train_seconds"] for e in r["epochs"]]
            per_epoch.append([round(b - a, 2) for a, b in zip([0.0, *ends], ends)])
        cpu = [r.get("cpu_seconds_to_target") for r in rs]
        summary[which] = {"median_seconds": med, "seconds": secs, "cpu_seconds": cpu,
                          "median_cpu_seconds": statistics.median(cpu) if med is not None else None,
                          "load_at_start": [r["load_at_start"] for r in rs], "epochs_to_target": epochs,
                          "epoch_seconds": per_epoch, "precision": sorted({r.get("precision") for r in rs}),
                          "final_test_accuracy": [r["final_test_accuracy"] for r in rs]}
        shown = f"{med:.2f}" if med is not None else "not reached"
        print(f"{which:10} {shown:>20} {str(epochs):>9} {','.join(summary[which]['precision']):>15} "
              f"{str(summary[which]['final_test_accuracy']):>15}")
    seed = summary.get("seed", {}).get("median_seconds")
    print()
    for which in ("seed-arch", "tfpilot"):
        mine = summary.get(which, {}).get("median_seconds")
        if seed and mine:
            summary[f"ratio_{which}"] = mine / seed
            summary[f"ratio_cpu_{which}"] = summary[which]["median_cpu_seconds"] / summary["seed"]["median_cpu_seconds"]
            per_repeat = [round(a / b, 3) for a, b in zip(summary[which]["seconds"], summary["seed"]["seconds"])]
            summary[f"ratio_per_repeat_{which}"] = per_repeat
            print(f"ratio {which} / seed: {mine / seed:.3f} wall (per repeat {per_repeat}), "
                  f"{summary[f'ratio_cpu_{which}']:.3f} CPU" + ("  (target <= 0.25)" if which == "tfpilot" else ""))
    if "ratio_tfpilot" in summary:
        summary["ratio"] = summary["ratio_tfpilot"]
    precisions = {which: ",".join(summary[which]["precision"]) for which in runs}
    tf_threads = {which: rs[0]["machine"]["threads"].get("tensorflow") for which, rs in runs.items() if rs}
    info = machine(precision=precisions, threads=tf_threads)
    info["children"] = {which: rs[0].get("machine") for which, rs in runs.items() if rs}
    print(describe(info))
    if args.json:
        args.json.write_text(json.dumps({"precision": args.precision, "sets": args.set, "runs": runs,
                                         "summary": summary, "machine": info}, indent=2))


if __name__ == "__main__":
    main()
