"""Time to 99.0% MNIST test accuracy: seed 004's script as written vs ``configs/mnist_fast.yaml``.

Both run in this one invocation, on the same machine and the same data (the local
``mnist.npz``), each in its own fresh Python process, alternating when ``--repeats`` > 1.
After every epoch the full 10,000-image test set is evaluated; the evaluation time is
*excluded* from the clock, which starts when ``model.fit`` begins. Validation, callbacks and
everything else the script does inside ``fit`` are included, for both.

The seed script (``bench/seeds/seed004_mnist_cnn.py``) runs unchanged: the harness only
points ``tf.keras.datasets.mnist.load_data`` at the local file and appends the timing
callback to its ``model.fit`` call.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/mnist_time_to_accuracy.py [--repeats 3] [--full]

Prints one line per epoch, a summary table, and the ratio tfpilot / seed (target <= 0.25).
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

        def on_epoch_end(self, epoch, logs=None):
            t = time.perf_counter()
            train_s = t - self.t0 - self.excluded
            probs = self.model.predict(x_test, batch_size=1000, verbose=0)
            acc = float(np.mean(np.argmax(probs, axis=1) == y_test))
            self.excluded += time.perf_counter() - t
            self.epochs.append({"epoch": epoch + 1, "train_seconds": round(train_s, 3), "test_accuracy": acc})
            print(f"  epoch {epoch + 1}: {train_s:7.2f} s  test accuracy {acc:.4f}", flush=True)
            if self.reached is None and acc >= target:
                self.reached = train_s
                if stop_at_target:
                    self.model.stop_training = True

        def result(self):
            return {"seconds_to_target": self.reached, "epochs": self.epochs,
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
    return timer.result()


def run_tfpilot(target: float, stop_at_target: bool) -> dict:
    """Train configs/mnist_fast.yaml through tfpilot's normal fit path."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from tfpilot.config import load_config
    from tfpilot.training import Trainer

    data = np.load(mnist_path())
    timer = make_timer(data["x_test"][..., None], data["y_test"], target, stop_at_target)
    run_dir = Path(tempfile.mkdtemp(prefix="tfpilot-fast-")) / "run"
    cfg = load_config(FAST_CONFIG, overrides=["train.callbacks.progress=none"], run_dir=run_dir)
    trainer = Trainer(cfg, callbacks=[timer]).fit()
    out = timer.result()
    out["precision"] = trainer.precision_
    out["run_test_accuracy"] = trainer.run_.metrics["test"]["accuracy"]
    return out


def child(which: str, target: float, stop_at_target: bool) -> None:
    result = (run_seed if which == "seed" else run_tfpilot)(target, stop_at_target)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(which: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--target", str(args.target)]
    if args.full:
        cmd.append("--full")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    print(f"== {which} ==", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("  epoch"):
            print(line, flush=True)
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        sys.exit(f"{which} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(results[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--repeats", type=int, default=1, help="alternate seed/tfpilot this many times")
    ap.add_argument("--full", action="store_true", help="train to the end instead of stopping at the target")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--child", choices=["seed", "tfpilot"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.target, not args.full)
        return
    mnist_path()
    runs: dict[str, list[dict]] = {"seed": [], "tfpilot": []}
    for _ in range(args.repeats):
        for which in ("seed", "tfpilot"):
            runs[which].append(spawn(which, args))
    print()
    print(f"{'':10} {'seconds to ' + format(args.target, '.1%'):>20} {'epochs':>7} {'final test acc':>15}")
    summary = {}
    for which, rs in runs.items():
        secs = [r["seconds_to_target"] for r in rs]
        ok = [s for s in secs if s is not None]
        med = statistics.median(ok) if len(ok) == len(secs) else None
        epochs = [next((e["epoch"] for e in r["epochs"] if e["test_accuracy"] >= args.target), None) for r in rs]
        summary[which] = {"median_seconds": med, "seconds": secs, "epochs_to_target": epochs,
                          "final_test_accuracy": [r["final_test_accuracy"] for r in rs]}
        shown = f"{med:.2f}" if med is not None else "not reached"
        print(f"{which:10} {shown:>20} {str(epochs):>7} {str(summary[which]['final_test_accuracy']):>15}")
    if summary["seed"]["median_seconds"] and summary["tfpilot"]["median_seconds"]:
        ratio = summary["tfpilot"]["median_seconds"] / summary["seed"]["median_seconds"]
        summary["ratio"] = ratio
        print(f"\nratio tfpilot / seed: {ratio:.3f}  (target <= 0.25)")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
