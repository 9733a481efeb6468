"""BatchNorm on small data (issue 10): ``cifar_cnn_bn`` on a ~2,000-image, 6-class CIFAR-10
subset, once with precise BN off (tfpilot before the fix) and once with it on (the default).

Each run goes through tfpilot's normal fit path (batch 128, 10 epochs, early stopping
restoring the best epoch). For the kept model the script prints, on the same validation
images in the same batches of 128: accuracy in training mode (BatchNorm normalising with
each batch's own statistics) and in inference mode (the moving statistics: how the saved
model predicts), plus test accuracy and the trainer's own train/inference check on training
examples (metrics.json ``mode_gap``).

Usage:
    TFPILOT_DATA_DIR=../shared/datasets nice python bench/small_data_bn.py [--subset /tmp/cifar6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tfpilot.config import load_config  # noqa: E402
from tfpilot.data.pipeline import make_pipeline  # noqa: E402
from tfpilot.training import Trainer  # noqa: E402
from tfpilot.training.mode_gap import measure_mode_gap  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog")


def extract_subset(archive: Path, out: Path, train_per_class: int, test_per_class: int) -> Path:
    """``out/cifar10-jpg/{train,test}/<class>/NNNN.jpg``: the first N images of each of 6 classes."""
    root = out / "cifar10-jpg"
    limits = {"train": train_per_class, "test": test_per_class}
    if root.is_dir():  # extracted before: it must be this very subset
        counts = {(s, c): len(list((root / s / c).glob("*.jpg"))) for s in limits for c in CLASSES}
        if any(n != limits[s] for (s, _), n in counts.items()):
            raise SystemExit(f"{root} holds another subset ({counts}); pass another --subset folder")
        return root
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts  # cifar10-jpg/<split>/<class>/NNNN.jpg
            if not member.isfile() or len(parts) != 4 or parts[2] not in CLASSES:
                continue
            if int(Path(parts[3]).stem) < limits[parts[1]]:
                tar.extract(member, out, filter="data")
    return root


def accuracy_in_both_modes(trainer: Trainer, split: str, batch_size: int) -> tuple[float, float, int]:
    """(training-mode, inference-mode) accuracy of the kept model on a split, same batches."""
    data = trainer.data_
    part = data.splits[split]
    shuffled = part.take(np.random.default_rng(0).permutation(len(part)))  # class-mixed batches
    ds = make_pipeline(shuffled, batch_size, training=False, **data.input_spec.decode_target())
    gap = measure_mode_gap(trainer.model_, ds)
    return gap.training_mode_accuracy, gap.inference_mode_accuracy, gap.examples


def run(name: str, dataset: Path, work: Path, args: argparse.Namespace, precise: bool) -> dict:
    cfg = load_config({
        "data": {"dataset": str(dataset)},
        "model": {"name": "cifar_cnn_bn"},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision,
                  "seed": args.seed, "precise_bn": {"enabled": precise},
                  "callbacks": {"progress": "none", "tensorboard": False, "backup": False}},
        "output": {"run_dir": str(work / name)},
    })
    t0 = time.perf_counter()
    trainer = Trainer(cfg).fit()
    wall = time.perf_counter() - t0
    m = trainer.run_.metrics
    train_mode, inference_mode, n = accuracy_in_both_modes(trainer, "val", args.batch_size)
    hist = trainer.history_
    row = {
        "variant": name, "val_examples": n, "val_training_mode": train_mode, "val_inference_mode": inference_mode,
        "test_accuracy": m["test"]["accuracy"], "train_gap": m["mode_gap"]["gap"],
        "train_gap_large": m["mode_gap"]["large"], "epochs_run": m["epochs_run"],
        "steps_per_epoch": -(-len(trainer.data_.splits["train"]) // args.batch_size),
        "best_val_loss_epoch": int(np.argmin(hist["val_loss"])) + 1, "precision": m["precision"],
        "train_seconds": m["train_seconds"], "wall_seconds": wall,
    }
    print(f"{name:22} val: training mode {train_mode:.4f}, inference mode {inference_mode:.4f} "
          f"(gap {100 * (train_mode - inference_mode):+.1f} points, {n} images) | test {row['test_accuracy']:.4f} | "
          f"train-data gap {100 * row['train_gap']:+.1f} points (large: {row['train_gap_large']}) | "
          f"{row['epochs_run']} epochs of {row['steps_per_epoch']} steps, kept epoch {row['best_val_loss_epoch']} | "
          f"{row['precision']} | train {row['train_seconds']:.0f} s", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TFPILOT_DATA_DIR", ROOT.parent / "shared" / "datasets")))
    p.add_argument("--subset", type=Path, default=Path(tempfile.gettempdir()) / "cifar6")
    p.add_argument("--train-per-class", type=int, default=300)
    p.add_argument("--test-per-class", type=int, default=50)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    dataset = extract_subset(args.data_dir / "cifar10-jpg.tar.gz", args.subset, args.train_per_class,
                             args.test_per_class)
    work = Path(tempfile.mkdtemp(prefix="tfpilot-small-bn-"))
    print(f"cifar_cnn_bn on {dataset} ({len(CLASSES)} classes, {args.train_per_class}/{args.test_per_class} "
          f"train/test images per class), batch {args.batch_size}, {args.epochs} epochs; runs in {work}", flush=True)
    rows = [run("before: precise BN off", dataset, work, args, precise=False),
            run("after: precise BN on", dataset, work, args, precise=True)]
    print("\n| variant | val acc, training mode | val acc, inference mode | gap (points) | test acc | "
          "train-data gap flagged |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['variant']} | {r['val_training_mode']:.4f} | {r['val_inference_mode']:.4f} | "
              f"{100 * (r['val_training_mode'] - r['val_inference_mode']):+.1f} | {r['test_accuracy']:.4f} | "
              f"{'yes' if r['train_gap_large'] else 'no'} ({100 * r['train_gap']:+.1f}) |")


if __name__ == "__main__":
    main()
