"""Run by test_resume.py in a fresh process: train (optionally killed mid-epoch) or resume."""

import os
import signal
import sys

import keras

from tfpilot.config import load_config
from tfpilot.training import Trainer


class KillAt(keras.callbacks.Callback):
    """SIGKILL this process at (epoch, batch): like a crash or an OOM kill, no clean-up."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


def config(run_dir: str, data_dir: str):
    return load_config({
        "data": {"dataset": "mnist", "data_dir": data_dir, "train_limit": 1200, "test_limit": 500},
        "model": {"name": "mlp", "params": {"hidden_units": [32], "dropout": 0.3}},
        "train": {"epochs": 5, "batch_size": 64, "deterministic": True, "seed": 7,
                  "schedule": {"name": "cosine"},
                  "callbacks": {"tensorboard": False, "progress": "none",
                                "early_stopping": {"enabled": True, "patience": 10}}},
        "output": {"run_dir": run_dir},
    })


if __name__ == "__main__":
    mode, run_dir, data_dir = sys.argv[1:4]
    if mode == "train":
        Trainer(config(run_dir, data_dir)).fit()
    elif mode == "crash":
        Trainer(config(run_dir, data_dir), callbacks=[KillAt(epoch=2, batch=8)]).fit()
    else:
        Trainer.resume(run_dir)
