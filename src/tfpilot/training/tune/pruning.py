"""The Keras callback that feeds a trial's per-epoch validation metric to Optuna's pruner.

Example:
    >>> callback = PruneOnEpoch(trial, "val_accuracy")  # doctest: +SKIP
    >>> Trainer(cfg, callbacks=[callback]).fit()  # doctest: +SKIP
    >>> callback.pruned_at  # None: the trial ran all its epochs  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import keras

from tfpilot.errors import UserError


class MetricNotLoggedError(UserError):
    """The search's metric is not among the epoch logs (no validation split, or a typo)."""


class PruneOnEpoch(keras.callbacks.Callback):
    """After every epoch, ``trial.report(logs[metric], step)`` (step: epochs done - 1), then
    stop training once ``trial.should_prune()``.

    Args:
        trial: the Optuna trial.
        metric: the epoch-log key, e.g. ``val_accuracy``.

    Attributes:
        pruned_at: the step the pruner stopped the trial at (None: not pruned).
    """

    def __init__(self, trial: Any, metric: str) -> None:
        super().__init__()
        self.trial, self.metric = trial, metric
        self.step = 0
        self.pruned_at: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.pruned_at is not None:  # a later fine-tuning stage of a pruned trial
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.metric not in logs:
            raise MetricNotLoggedError(
                f"metric {self.metric!r} is not in the epoch logs ({', '.join(sorted(logs)) or 'none'}): choose "
                "one of the val_ keys with --metric (a search needs a validation split: data.val_split > 0)")
        value = float(logs[self.metric])
        if math.isfinite(value):
            self.trial.report(value, self.step)
        self.step += 1
        if not math.isfinite(value) or self.trial.should_prune():
            self.pruned_at = self.step - 1
            self.model.stop_training = True
