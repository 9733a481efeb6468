"""Training: the fit path, callbacks, optimizers, schedules, precision; it writes run directories."""

from tfpilot.training.trainer import Trainer

__all__ = ["Trainer"]
