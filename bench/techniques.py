"""Measured examples for docs/techniques/*.md: each technique against the same run without it.

Every experiment trains small real-data runs through tfpilot's normal fit path (the Python
API, exactly what the config switch does) and prints one table row per variant.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets python bench/techniques.py [imbalance|augment|regularize|loop|determinism ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tfpilot.config import load_config  # noqa: E402
from tfpilot.data import DATASETS, register_dataset  # noqa: E402
from tfpilot.training import Trainer  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="tfpilot-techniques-"))


def imbalanced_mnist(cfg, report):
    """MNIST with digits 5-9 cut to 2% in train (test untouched): a long-tailed dataset."""
    ds = DATASETS.get("mnist")(cfg, report)
    train = ds.splits["train"]
    rng = np.random.default_rng(0)
    keep = np.flatnonzero((train.y < 5) | (rng.random(len(train.y)) < 0.02))
    ds.splits["train"] = train.take(keep)
    ds.name = "mnist_imbalanced"
    return ds


def run(name: str, tree: dict, *overrides: str) -> dict:
    tree = {**tree, "output": {"run_dir": str(WORK / name)}}
    cfg = load_config(tree, overrides=["train.callbacks.progress=none", "train.callbacks.tensorboard=false",
                                       *overrides])
    t0 = time.perf_counter()
    trainer = Trainer(cfg).fit()
    m = trainer.run_.metrics
    row = {"variant": name, "accuracy": m["test"]["accuracy"], "macro_f1": m["test"]["macro_f1"],
           "balanced_accuracy": m["test"]["balanced_accuracy"], "train_seconds": m["train_seconds"],
           "wall_seconds": time.perf_counter() - t0}
    print(f"  {name:28} acc {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}  "
          f"balanced acc {row['balanced_accuracy']:.4f}  train {row['train_seconds']:.1f}s", flush=True)
    return row


def imbalance() -> None:
    print("class imbalance: MNIST with digits 5-9 cut to 2% of train, mlp, 3 epochs")
    if "mnist_imbalanced" not in DATASETS:
        register_dataset("mnist_imbalanced")(imbalanced_mnist)
    base = {"data": {"dataset": "mnist_imbalanced"}, "model": {"name": "mlp"},
            "train": {"epochs": 3, "batch_size": 128, "callbacks": {"early_stopping": {"enabled": False}}}}
    run("imb-none", base)
    run("imb-class_weight-auto", base, "train.class_weight=auto")
    run("imb-balanced_sampling", base, "data.balanced_sampling=true")


def augment() -> None:
    print("augmentation: Fashion-MNIST, 3,000 training images, fast_cnn, 12 epochs")
    base = {"data": {"dataset": "fashion_mnist", "train_limit": 3000},
            "model": {"name": "fast_cnn", "params": {"padding": "same"}},
            "train": {"epochs": 12, "batch_size": 64, "schedule": {"name": "cosine"},
                      "callbacks": {"early_stopping": {"enabled": False}}}}
    run("aug-none", base)
    run("aug-flip-translate-zoom", base, "data.augment.flip=horizontal", "data.augment.translation=0.1",
        "data.augment.zoom=0.1")


def regularize() -> None:
    print("regularisation: Fashion-MNIST, 3,000 training images, mlp [512, 256], 12 epochs")
    base = {"data": {"dataset": "fashion_mnist", "train_limit": 3000},
            "model": {"name": "mlp", "params": {"hidden_units": [512, 256], "dropout": 0.0}},
            "train": {"epochs": 12, "batch_size": 64, "callbacks": {"early_stopping": {"enabled": False}}}}
    run("reg-none", base)
    run("reg-l2-dropout-smoothing", base, "train.regularization.l2=0.0001", "model.params.dropout=0.3",
        "train.label_smoothing=0.1")
    run("reg-ema", base, "train.optimizer.ema=true")


def loop() -> None:
    print("custom training loop vs fit: MNIST, mnist_cnn, 1 epoch")
    base = {"data": {"dataset": "mnist"}, "model": {"name": "mnist_cnn"}, "train": {"epochs": 1}}
    run("loop-fit", base)
    run("loop-custom", base, "train.loop=custom")


def determinism() -> None:
    from tfpilot.training.determinism import check_determinism

    print("determinism: two 20-step twins of configs/mnist_cnn.yaml")
    report = check_determinism(load_config(ROOT / "configs" / "mnist_cnn.yaml"), steps=20, workdir=WORK / "det")
    print(f"  identical: {report.identical}  ({report.num_weights} weights, max |diff| {report.max_abs_diff})")


EXPERIMENTS = {"imbalance": imbalance, "augment": augment, "regularize": regularize, "loop": loop,
               "determinism": determinism}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", help=f"any of {', '.join(EXPERIMENTS)} (default: all)")
    names = ap.parse_args().which or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        ap.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    for name in names:
        EXPERIMENTS[name]()


if __name__ == "__main__":
    main()
