"""The callbacks every run gets, built from ``train.callbacks``, plus tfpilot's own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfpilot.config.schema import CallbacksConfig


def current_learning_rate(optimizer: Any) -> float:
    """The optimizer's learning rate now (evaluating a schedule at the current step)."""
    lr = optimizer.learning_rate
    return float(np.asarray(keras.ops.convert_to_numpy(lr)))


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` to each epoch's logs (so history.csv and the report show it): the
    rate the epoch's *first* step used.

    It is read when the epoch begins, before its first step: read at the epoch's end, a schedule
    is evaluated at the next epoch's first step (with cosine restarts, the next cycle's peak
    would be logged as the last epoch's rate). A rate changed between epochs (reduce-on-plateau)
    is logged from the epoch it applies to.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rate: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._rate = current_learning_rate(self.model.optimizer)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and self._rate is not None:
            logs["learning_rate"] = self._rate


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` to each epoch's logs and keeps the total in ``train_seconds``."""

    def __init__(self) -> None:
        super().__init__()
        self.train_seconds = 0.0
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        dt = time.perf_counter() - self._t0
        self.train_seconds += dt
        if logs is not None:
            logs["epoch_seconds"] = dt


class RichProgress(keras.callbacks.Callback):
    """A rich progress bar per epoch, and one summary line per epoch.

    Args:
        epochs: total epochs (for the header).
        steps: steps per epoch, or None when unknown.
        console: a ``rich.console.Console`` (default: a new one on stderr).
    """

    def __init__(self, epochs: int, steps: int | None, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console

        self.epochs, self.steps = epochs, steps
        self.console = console or Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.steps, status="")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._progress is None:
            return
        status = ""
        if logs and batch % 20 == 0:
            status = " ".join(f"{k}={float(v):.4f}" for k, v in logs.items() if k in ("loss", "accuracy"))
            self._progress.update(self._task, completed=batch + 1, status=status)
        else:
            self._progress.update(self._task, completed=batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        logs = logs or {}
        keys = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch_seconds")
        parts = [f"{k}={logs[k]:.4g}" for k in keys if k in logs]
        self.console.print(f"epoch {epoch + 1}/{self.epochs}  " + "  ".join(parts), highlight=False)


def build_callbacks(cfg: CallbacksConfig, run_dir: Path, epochs: int, steps: int | None,
                    has_validation: bool = True, append: bool = False, *, ema: bool = False,
                    precise_batches: Any = None,
                    ) -> tuple[list[keras.callbacks.Callback], EpochTimer]:
    """The run's callbacks, in the order they must see each epoch's logs.

    Early stopping and the best-model checkpoint judge epochs by the same criterion,
    ``cfg.monitor`` (``cfg.monitor_mode``), so ``checkpoints/best.keras`` and the weights early
    stopping restores come from the same epoch. Both see the weights a run keeps: the EMA
    weights when ``ema``, with BatchNorm statistics recomputed from ``precise_batches``
    (:class:`~tfpilot.training.inference_weights.InferenceWeights` first, its
    :class:`~tfpilot.training.inference_weights.TrainingWeights` last).

    Crash-safe backups are added by the trainer (:class:`~tfpilot.training.resume.ResumeCheckpoint`),
    after these, since they must see these callbacks' state and the training weights.

    Args:
        cfg: ``train.callbacks``.
        run_dir: the run directory (checkpoints/, history.csv, logs/).
        epochs, steps: epochs and steps per epoch (the progress bar).
        has_validation: whether there is a validation split (early stopping, plateau and
            checkpoint need one).
        append: continue history.csv (a resumed run or a second training stage).
        ema: the optimizer keeps EMA weights (``train.optimizer.ema``).
        precise_batches: a fixed sample of training batches for precise BN, or None.

    Returns:
        ``(callbacks, timer)``; ``timer.train_seconds`` is the time spent in epochs.

    Example:
        >>> from pathlib import Path
        >>> from tfpilot.config.schema import CallbacksConfig
        >>> cbs, _ = build_callbacks(CallbacksConfig(monitor="val_accuracy", tensorboard=False, csv_logger=False,
        ...                                          checkpoint=False, progress="none"), Path("."), 1, 1)
        >>> [type(c).__name__ for c in cbs]
        ['InferenceWeights', 'LearningRateLogger', 'EpochTimer', 'TerminateOnNaN', 'EarlyStopping', 'TrainingWeights']
    """
    from tfpilot.training.inference_weights import InferenceWeights, TrainingWeights

    timer = EpochTimer()
    inference = InferenceWeights(ema=ema, precise_batches=precise_batches)
    cbs: list[keras.callbacks.Callback] = [inference, LearningRateLogger(), timer]
    if cfg.terminate_on_nan:
        cbs.append(keras.callbacks.TerminateOnNaN())
    if has_validation:
        es = cfg.early_stopping
        if es.enabled:
            cbs.append(keras.callbacks.EarlyStopping(
                monitor=cfg.monitor, mode=cfg.monitor_mode, patience=es.patience,
                restore_best_weights=es.restore_best_weights))
        rl = cfg.reduce_lr_on_plateau
        if rl.enabled:
            cbs.append(keras.callbacks.ReduceLROnPlateau(
                monitor=rl.monitor, factor=rl.factor, patience=rl.patience, min_lr=rl.min_lr))
        if cfg.checkpoint:
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            cbs.append(keras.callbacks.ModelCheckpoint(
                str(run_dir / "checkpoints" / "best.keras"), monitor=cfg.monitor, mode=cfg.monitor_mode,
                save_best_only=True))
    if cfg.csv_logger:
        cbs.append(keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=append))
    if cfg.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(str(run_dir / "logs"), histogram_freq=0, write_graph=False))
    if cfg.progress == "rich":
        cbs.append(RichProgress(epochs, steps))
    cbs.append(TrainingWeights(inference))
    return cbs, timer
