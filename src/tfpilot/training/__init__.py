"""Training: the fit path, callbacks, optimizers, schedules, precision, run directories."""

from tfpilot.training.run import Run
from tfpilot.training.trainer import Trainer, train

__all__ = ["Run", "Trainer", "train"]
