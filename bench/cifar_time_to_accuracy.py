"""CIFAR-10 time to accuracy: seed 000's CNN script as written vs ``configs/cifar10_fast.yaml``.

Both run in this one invocation, on the same machine and the same data (the local JPEG copy
``cifar10-jpg.tar.gz``, decoded once per process -- data preparation, not on the clock), each
in its own fresh Python process, one after the other. The clock starts when ``model.fit``
begins (tfpilot: plus adapting the whitening layer, which runs just before ``fit``); after
every epoch the 10,000 test images are evaluated and that time is *excluded*. Validation,
callbacks and everything else inside ``fit`` are included, for both. CPU seconds (all threads
of the process, evaluation excluded) are recorded beside the wall seconds: on a shared machine
they show what an unshared one would take (about CPU seconds / cores).

* seed -- ``bench/seeds/seed000_cifar_cnn.py`` runs unchanged (batch 64, Adam, 30 epochs at most,
  ``validation_split=0.2``, EarlyStopping on val_loss with patience 5, restore_best_weights). The
  harness hands ``datasets.cifar10.load_data`` the JPEG copy as Keras' arrays (uint8
  (N, 32, 32, 3), labels (N, 1)); the folder lists the images class by class, so the training
  arrays are shuffled once (seed 0) -- the pickles interleave the classes, and
  ``validation_split`` takes the last 20%. Its *final* accuracy is the test accuracy of the
  weights EarlyStopping restores; its time is the clock at its best epoch (by val_loss).
  ``--seed-epochs N`` caps the script's 30 epochs at N for a quicker check (the summary says so).
* tfpilot -- ``configs/cifar10_fast.yaml`` through the normal ``Trainer``, at
  ``--precision`` (default float32: on a bfloat16 CPU it stands in for the AVX2-only kind).

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/cifar_time_to_accuracy.py [--seed-epochs N]
        [--precision float32] [--only tfpilot,seed] [--json out.json]

Prints one line per epoch, then the seed's final accuracy and time to its best epoch, the time
tfpilot takes to reach that accuracy, the ratio (target <= 0.15), and tfpilot's final accuracy
and training time (target >= 85% within 15 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED_SCRIPT = HERE / "seeds" / "seed000_cifar_cnn.py"
FAST_CONFIG = ROOT / "configs" / "cifar10_fast.yaml"
CONTENDERS = ("tfpilot", "seed")


def cifar_arrays():
    """``((x_train, y_train), (x_test, y_test))`` as ``keras.datasets.cifar10.load_data`` returns them."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from tfpilot.config import DataConfig
    from tfpilot.data import load_dataset

    ds = load_dataset(DataConfig(dataset="cifar10"))
    tr, te = ds.splits["train"], ds.splits["test"]
    order = np.random.default_rng(0).permutation(len(tr.y))
    return (tr.x[order], tr.y[order, None].astype("uint8")), (te.x, te.y[:, None].astype("uint8"))


def machine() -> dict:
    """CPU kind, cores and TensorFlow's thread settings (``bench/_machine.py``; 0: TensorFlow's
    default, all cores)."""
    import tensorflow as tf

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _machine import cpu_info

    info = cpu_info()
    return {"cpu_kind": "avx512_bf16" if info["avx512_bf16"] else info["kind"], "cpu": info["cpu"],
            "cores": info["cpu_count"],
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def make_timer(x_test, y_test):
    """A Keras callback recording wall and CPU seconds and the test accuracy after every epoch
    (the evaluation excluded from both clocks), and the test accuracy of the final weights."""
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from tfpilot.training.inference_weights import ema_optimizer, swap_ema_weights

    class TimeToAccuracy(keras.callbacks.Callback):
        extra_seconds = 0.0  # work before fit that belongs on the clock (tfpilot's whitening adapt)

        def on_train_begin(self, logs=None):
            self.t0, self.c0 = time.perf_counter(), time.process_time()
            self.excluded, self.excluded_cpu, self.epochs, self.final = 0.0, 0.0, [], None

        def _accuracy(self):
            # the weights a run keeps: with train.optimizer.ema, tfpilot validates and saves the EMA
            # weights, and puts the raw ones back for training before a user callback runs
            optimizer = ema_optimizer(self.model)
            swapped = optimizer is not None and swap_ema_weights(optimizer)
            try:
                probs = self.model.predict(x_test, batch_size=1000, verbose=0)
            finally:
                if swapped:
                    swap_ema_weights(optimizer)
            return float(np.mean(np.argmax(probs, axis=1) == y_test))

        def on_epoch_end(self, epoch, logs=None):
            t, c = time.perf_counter(), time.process_time()
            train_s = t - self.t0 - self.excluded + self.extra_seconds
            cpu_s = c - self.c0 - self.excluded_cpu
            acc = self._accuracy()
            self.excluded += time.perf_counter() - t
            self.excluded_cpu += time.process_time() - c
            logs = logs or {}
            self.epochs.append({"epoch": epoch + 1, "train_seconds": round(train_s, 2), "cpu_seconds": round(cpu_s, 2),
                                "test_accuracy": acc, "val_loss": logs.get("val_loss")})
            print(f"  epoch {epoch + 1}: {train_s:8.1f} s wall {cpu_s:8.1f} s cpu  test accuracy {acc:.4f}", flush=True)

        def on_train_end(self, logs=None):  # after EarlyStopping restored its best weights
            self.final = self._accuracy()

        def result(self):
            return {"epochs": self.epochs, "final_test_accuracy": self.final}

    return TimeToAccuracy()


def run_seed(max_epochs: int | None) -> dict:
    """Execute the seed script as written, timing its model.fit."""
    import matplotlib

    matplotlib.use("Agg")
    import tensorflow as tf

    (x_tr, y_tr), (x_te, y_te) = cifar_arrays()
    tf.keras.datasets.cifar10.load_data = lambda *a, **k: ((x_tr, y_tr), (x_te, y_te))
    timer = make_timer((x_te / 255.0).astype("float32"), y_te[:, 0])
    original_fit = tf.keras.Model.fit

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), timer]
        kwargs["verbose"] = 0
        if max_epochs:
            kwargs["epochs"] = min(kwargs.get("epochs", 1), max_epochs)
        return original_fit(self, *args, **kwargs)

    tf.keras.Model.fit = fit
    os.chdir(tempfile.mkdtemp(prefix="seed000-cifar-"))
    exec(compile(SEED_SCRIPT.read_text(), str(SEED_SCRIPT), "exec"), {"__name__": "__main__"})
    out = timer.result()
    best = min(out["epochs"], key=lambda e: e["val_loss"])
    out.update(best_epoch=best["epoch"], seconds_to_best=best["train_seconds"], cpu_seconds_to_best=best["cpu_seconds"],
               precision="float32", epochs_cap=max_epochs, **machine())
    return out


def run_tfpilot(precision: str, settings: list[str]) -> dict:
    """Train configs/cifar10_fast.yaml through tfpilot's normal fit path."""
    sys.path.insert(0, str(ROOT / "src"))
    import tfpilot.models.airbench as airbench
    from tfpilot.config import load_config
    from tfpilot.training import Trainer

    (_, _), (x_te, y_te) = cifar_arrays()
    timer = make_timer(x_te, y_te[:, 0])
    adapt = airbench.adapt_whitening

    def timed_adapt(*args, **kwargs):
        started = time.perf_counter()
        try:
            return adapt(*args, **kwargs)
        finally:
            timer.extra_seconds += time.perf_counter() - started

    airbench.adapt_whitening = timed_adapt  # the trainer imports it when it adapts the model
    run_dir = Path(tempfile.mkdtemp(prefix="tfpilot-cifar-")) / "run"
    overrides = ["train.callbacks.progress=none", f"train.precision={precision}", *settings]
    cfg = load_config(FAST_CONFIG, overrides=overrides, run_dir=run_dir)
    started = time.perf_counter()
    trainer = Trainer(cfg, callbacks=[timer]).fit()
    out = timer.result()
    out.update(precision=trainer.precision_, run_test_accuracy=trainer.run_.metrics["test"]["accuracy"],
               run_train_seconds=trainer.run_.metrics["train_seconds"], adapt_seconds=round(timer.extra_seconds, 2),
               trainer_wall_seconds=round(time.perf_counter() - started, 1), run_dir=str(run_dir), **machine())
    return out


def spawn(which: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--precision", args.precision]
    if args.seed_epochs:
        cmd += ["--seed-epochs", str(args.seed_epochs)]
    for setting in args.set:
        cmd += ["--set", setting]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    print(f"== {which} ==", flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines = []
    for line in proc.stdout:
        out_lines.append(line)
        if line.startswith("  epoch"):
            print(line, end="", flush=True)
    stderr = proc.stderr.read()
    proc.wait()
    results = [line for line in out_lines if line.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        sys.exit(f"{which} failed:\n{''.join(out_lines)[-3000:]}\n{stderr[-3000:]}")
    return json.loads(results[-1][len("RESULT "):])


def first_reaching(epochs: list[dict], target: float) -> dict | None:
    """The first epoch whose test accuracy is at least ``target`` (None: never)."""
    return next((e for e in epochs if e["test_accuracy"] >= target), None)


def summarise(runs: dict[str, dict], args: argparse.Namespace) -> dict:
    summary: dict = {}
    seed, fast = runs.get("seed"), runs.get("tfpilot")
    if fast:
        last = fast["epochs"][-1]
        at85 = first_reaching(fast["epochs"], 0.85)
        summary["tfpilot"] = {"final_test_accuracy": fast["final_test_accuracy"], "train_seconds": last["train_seconds"],
                              "cpu_seconds": last["cpu_seconds"], "seconds_to_85": at85 and at85["train_seconds"],
                              "precision": fast["precision"], "cpu_kind": fast["cpu_kind"], "cores": fast["cores"]}
        print(f"\ntfpilot ({fast['precision']}, {fast['cpu_kind']}, {fast['cores']} cores, intra-op threads "
              f"{fast['intra_op_threads'] or 'default'}): final test accuracy {fast['final_test_accuracy']:.4f} after "
              f"{last['train_seconds']:.1f} s wall ({last['cpu_seconds']:.1f} s cpu); 85% "
              + (f"at epoch {at85['epoch']}, {at85['train_seconds']:.1f} s" if at85 else "not reached"))
    if seed:
        cap = f" (capped at {seed['epochs_cap']} epochs by --seed-epochs: not the script's 30)" if seed["epochs_cap"] else ""
        summary["seed"] = {"final_test_accuracy": seed["final_test_accuracy"], "best_epoch": seed["best_epoch"],
                           "seconds_to_best": seed["seconds_to_best"], "cpu_seconds_to_best": seed["cpu_seconds_to_best"],
                           "epochs_run": len(seed["epochs"]), "epochs_cap": seed["epochs_cap"]}
        print(f"seed 000 (float32, {seed['cpu_kind']}, {seed['cores']} cores){cap}: final test accuracy "
              f"{seed['final_test_accuracy']:.4f} (best epoch {seed['best_epoch']} of {len(seed['epochs'])}, "
              f"{seed['seconds_to_best']:.1f} s wall, {seed['cpu_seconds_to_best']:.1f} s cpu)")
    if seed and fast:
        hit = first_reaching(fast["epochs"], seed["final_test_accuracy"])
        if hit is None:
            print("tfpilot never reached the seed's final accuracy")
        else:
            ratio, cpu_ratio = hit["train_seconds"] / seed["seconds_to_best"], hit["cpu_seconds"] / seed["cpu_seconds_to_best"]
            summary.update(ratio=ratio, cpu_ratio=cpu_ratio, tfpilot_epoch_to_seed_final=hit["epoch"],
                           tfpilot_seconds_to_seed_final=hit["train_seconds"])
            print(f"tfpilot reaches the seed's {seed['final_test_accuracy']:.4f} at epoch {hit['epoch']}, "
                  f"{hit['train_seconds']:.1f} s: ratio tfpilot / seed {ratio:.3f} wall, {cpu_ratio:.3f} cpu "
                  "(target <= 0.15)")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-epochs", type=int, help="cap the seed script's 30 epochs (a quicker, capped check)")
    ap.add_argument("--precision", default="float32", help="tfpilot's train.precision (default float32)")
    ap.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated: tfpilot,seed (in this order)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of cifar10_fast.yaml for tfpilot's run (repeatable), as `tfpilot train --set`")
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = run_seed(args.seed_epochs) if args.child == "seed" else run_tfpilot(args.precision, args.set)
        print("RESULT " + json.dumps(result), flush=True)
        return
    which = [w for w in args.only.split(",") if w]
    unknown = set(which) - set(CONTENDERS)
    if unknown:
        sys.exit(f"--only: unknown {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    runs = {w: spawn(w, args) for w in which}
    summary = summarise(runs, args)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
