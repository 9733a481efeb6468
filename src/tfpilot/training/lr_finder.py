"""The learning-rate range test (Smith, 2017; fast.ai's ``lr_find``).

Train a throwaway copy of the configured model for a few dozen batches while the
learning rate grows exponentially from ``start_lr`` (1e-7) to ``end_lr`` (10), record
each batch's loss, and stop once the loss diverges (its running average > 4x the best
so far, or not finite). Too small a rate leaves the loss flat; too large a rate blows
it up; a good rate lies where the loss falls fastest.

The suggestion is read off a *centred* moving average of the batch losses (a trailing
average, as used to detect divergence, lags the sweep by several steps, i.e. by a good
fraction of a decade of learning rate, and would push the suggestion too high):

* ``"steepest"`` (default): the rate where the smoothed loss falls fastest per decade
  of learning rate (the most negative slope of loss vs. log10(lr)), searched between the
  start of the sweep and the minimum of the smoothed loss.
* ``"min_div_10"``: the rate at the minimum of the smoothed loss, divided by 10.

Both are always computed (``steepest_lr``, ``min_loss_lr``). The sweep is a normal
``model.fit`` with a callback that sets the rate before every batch; the model, data
pipeline and optimizer are the ones the Trainer builds from the same config.

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.training.lr_finder import find_lr
    >>> result = find_lr(load_config("configs/mnist_cnn.yaml"), out_dir="runs/lr")  # doctest: +SKIP
    >>> f"{result.suggestion:.1e}", result.plot_path.name  # doctest: +SKIP
    ('1.3e-03', 'lr_find.png')
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfpilot.errors import UserError

METHODS = ("steepest", "min_div_10")
PLOT = "lr_find.png"
RESULT = "lr_find.json"


@dataclass
class LRFinderResult:
    """What the range test measured and suggests.

    Attributes:
        lrs: the learning rate of each recorded batch.
        losses: each batch's training loss.
        smoothed: the centred moving average of ``losses`` the suggestion is read from.
        suggestion: the suggested learning rate (by ``method``).
        method: "steepest" or "min_div_10".
        steepest_lr: where the smoothed loss falls fastest (vs. log10 lr).
        min_loss_lr: where the smoothed loss is lowest.
        stopped_early: the loss diverged before the sweep reached ``end_lr``.
        planned_steps: batches the full sweep would have run.
        plot_path: the saved loss-vs-LR plot, if ``out_dir`` was given.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    method: str
    steepest_lr: float
    min_loss_lr: float
    stopped_early: bool
    planned_steps: int
    plot_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plot_path"] = str(self.plot_path) if self.plot_path else None
        for key in ("losses", "smoothed"):  # JSON has no NaN / Infinity
            d[key] = [v if math.isfinite(v) else None for v in d[key]]
        return d


class LRRangeTest(keras.callbacks.Callback):
    """Sets the learning rate before each batch and records each batch's loss.

    Metrics are reset before every batch, so ``logs["loss"]`` at the batch's end is that
    batch's loss (not the running epoch mean). Needs ``steps_per_execution=1``.

    Args:
        lrs: the learning rate of each step (the sweep).
        beta: smoothing factor of the loss's running (exponential, bias-corrected) average.
        diverge: stop when the running average exceeds ``diverge`` x its minimum so far.

    Example:
        >>> cb = LRRangeTest(np.geomspace(1e-7, 10, 100))
        >>> model.fit(stream, epochs=1, steps_per_epoch=100, callbacks=[cb])  # doctest: +SKIP
    """

    def __init__(self, lrs: np.ndarray, beta: float = 0.9, diverge: float = 4.0) -> None:
        super().__init__()
        self.lrs = np.asarray(lrs, dtype=np.float64)
        self.beta, self.diverge = float(beta), float(diverge)
        self.recorded_lrs: list[float] = []
        self.losses: list[float] = []
        self.running: list[float] = []
        self.stopped_early = False
        self._avg, self._best = 0.0, math.inf

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.optimizer.learning_rate = float(self.lrs[min(batch, len(self.lrs) - 1)])
        self.model.reset_metrics()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        self.recorded_lrs.append(float(self.lrs[min(batch, len(self.lrs) - 1)]))
        self.losses.append(loss)
        if not math.isfinite(loss):
            self.running.append(math.nan)
            self.stopped_early = batch < len(self.lrs) - 1
            self.model.stop_training = True
            return
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** len(self.losses))
        self.running.append(smooth)
        self._best = min(self._best, smooth)
        if smooth > self.diverge * self._best:
            self.stopped_early = batch < len(self.lrs) - 1
            self.model.stop_training = True


def centred_average(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """A centred (zero-lag) moving average; the window (odd, default ~1/10 of the points,
    3 to 15) shrinks at the ends. Non-finite values are left out of every window.

    Example:
        >>> centred_average(np.array([1.0, 2.0, 9.0, 4.0, 5.0]), window=3).tolist()
        [1.5, 4.0, 5.0, 6.0, 4.5]
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if window is None:
        window = int(np.clip(n // 10, 3, 15))
    half = max(int(window) // 2, 0)
    ok = np.isfinite(values)
    out = np.full(n, np.nan)
    for i in range(n):
        lo, hi = max(i - half, 0), min(i + half + 1, n)
        if ok[i] and ok[lo:hi].any():
            out[i] = float(np.mean(values[lo:hi][ok[lo:hi]]))
    return out


def suggest(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float, list[str]]:
    """``(steepest_lr, min_loss_lr, notes)`` from a sweep's rates and smoothed losses.

    Example:
        >>> lrs = np.geomspace(1e-5, 1, 50)
        >>> loss = 2 - np.tanh(3 * (np.log10(lrs) + 3)) + np.where(lrs > 0.1, 50 * (lrs - 0.1), 0)
        >>> steep, low, _ = suggest(lrs, loss)
        >>> round(float(np.log10(steep)), 1), bool(1e-2 < low < 0.2)
        (-3.0, True)
    """
    notes: list[str] = []
    ok = np.isfinite(smoothed)
    lrs, smoothed = np.asarray(lrs)[ok], np.asarray(smoothed)[ok]
    if len(lrs) == 0:
        raise UserError("the range test recorded no finite loss: check the data and the model")
    low = int(np.argmin(smoothed))
    min_loss_lr = float(lrs[low])
    if low < 3:
        notes.append("the loss was lowest within the first few steps: start the sweep lower (start_lr)")
        return min_loss_lr / 10, min_loss_lr, notes
    slope = np.gradient(smoothed[: low + 1], np.log10(lrs[: low + 1]))
    skip = min(max(len(slope) // 10, 1), len(slope) - 1)  # the first points: the average is settling
    steep = skip + int(np.argmin(slope[skip:]))
    if slope[steep] >= 0:
        notes.append("the loss never fell during the sweep: the suggestion falls back to min_loss_lr / 10")
        return min_loss_lr / 10, min_loss_lr, notes
    return float(lrs[steep]), min_loss_lr, notes


def plot_lr_find(result: LRFinderResult, path: str | Path) -> Path:
    """Save the loss-vs-learning-rate curve (log x-axis, suggestion marked) as a PNG.

    Example:
        >>> plot_lr_find(result, "runs/lr/lr_find.png")  # doctest: +SKIP
        PosixPath('runs/lr/lr_find.png')
    """
    from tfpilot.plotting import ACCENT, TRAIN, VAL, new_figure, to_png

    fig = new_figure(7, 4.2)
    ax = fig.subplots()
    ax.plot(result.lrs, result.losses, color=TRAIN, alpha=0.3, lw=1, label="batch loss")
    ax.plot(result.lrs, result.smoothed, color=TRAIN, lw=2, label="smoothed loss")
    ax.axvline(result.suggestion, color=ACCENT, ls="--", lw=1.5,
               label=f"suggestion ({result.method}): {result.suggestion:.2e}")
    ax.axvline(result.min_loss_lr, color=VAL, ls=":", lw=1.2, label=f"minimum loss: {result.min_loss_lr:.2e}")
    finite = np.asarray(result.smoothed)[np.isfinite(result.smoothed)]
    if len(finite):
        top = max(finite[0], np.min(finite)) * 1.5  # hide the divergence spike, keep the useful range
        ax.set_ylim(np.min(finite) - 0.05 * abs(top - np.min(finite)), top)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("Learning-rate range test" + (" (stopped: loss diverged)" if result.stopped_early else ""))
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(frameon=False, fontsize=9)
    path = Path(path)
    to_png(fig, path)
    return path


def find_lr(
    config: Any,
    out_dir: str | Path | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int | None = None,
    method: str = "steepest",
    beta: float = 0.9,
    diverge: float = 4.0,
    model: Any = None,
    dataset: Any = None,
    loss: Any = None,
) -> LRFinderResult:
    """Run the learning-rate range test for ``config``'s model, data and optimizer.

    Args:
        config: a :class:`~tfpilot.config.Config` (or a YAML path / dict for ``load_config``).
        out_dir: where to save ``lr_find.png`` and ``lr_find.json`` (None: nothing saved).
        start_lr, end_lr: the sweep's range (exponential in between).
        num_steps: batches of the sweep; default one epoch but at most 100 and at least 30
            (the training data repeats if an epoch is shorter).
        method: how to pick the suggestion: "steepest" or "min_div_10" (see the module doc).
        beta: smoothing of the running loss average that detects divergence.
        diverge: stop once that running average exceeds this multiple of its minimum.
        model: a throwaway uncompiled model to sweep (default: built from the config, like
            the Trainer). Its weights are changed.
        dataset: a batched, repeating-or-long-enough ``(x, y[, sample_weight])`` training
            stream (default: the config's training split, shuffled, repeated).
        loss: the loss (default: the Trainer's choice for this config).

    Returns:
        The :class:`LRFinderResult`.

    Example:
        >>> result = find_lr({"data": {"dataset": "digits"}, "model": {"name": "mlp"}})  # doctest: +SKIP
        >>> 1e-7 <= result.suggestion <= 10  # doctest: +SKIP
        True
    """
    from tfpilot.config import Config, load_config
    from tfpilot.training.optimizers import create_optimizer
    from tfpilot.training.setup import loss_and_metrics, loss_weights

    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not 0 < start_lr < end_lr:
        raise UserError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if num_steps is not None and num_steps < 5:
        raise UserError(f"num_steps must be at least 5 for a usable curve, got {num_steps}")
    cfg = config if isinstance(config, Config) else load_config(config)
    steps = num_steps
    if model is None or dataset is None:
        cfg, model, dataset, steps_per_epoch = _model_and_stream(cfg, model, dataset)
        steps = steps or max(min(100, steps_per_epoch), 30)
    elif steps is None:
        raise UserError("with your own model and dataset, give num_steps too")

    lrs = np.geomspace(start_lr, end_lr, int(steps))
    weights = None
    if loss is None:  # the Trainer's: a table model's loss is summed over its heads, each with its loss_weight
        loss, weights = loss_and_metrics(cfg, model, int(model.outputs[0].shape[-1]))[0], loss_weights(cfg)
    model.compile(optimizer=create_optimizer(cfg.train.optimizer, float(start_lr)), loss=loss, loss_weights=weights,
                  jit_compile=False, steps_per_execution=1)
    test = LRRangeTest(lrs, beta=beta, diverge=diverge)
    model.fit(dataset, epochs=1, steps_per_epoch=int(steps), callbacks=[test], verbose=0, shuffle=False)

    smoothed = centred_average(np.array(test.losses))
    steepest, lowest, notes = suggest(np.array(test.recorded_lrs), smoothed)
    if not test.stopped_early and len(test.losses) == len(lrs):
        notes.append("the loss did not diverge up to end_lr: a higher end_lr would show the whole curve")
    result = LRFinderResult(
        lrs=test.recorded_lrs, losses=test.losses, smoothed=[float(v) for v in smoothed],
        suggestion=steepest if method == "steepest" else lowest / 10, method=method,
        steepest_lr=steepest, min_loss_lr=lowest, stopped_early=test.stopped_early,
        planned_steps=int(steps), notes=notes,
    )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        result.plot_path = plot_lr_find(result, out / PLOT)
        (out / RESULT).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _model_and_stream(cfg: Any, model: Any, dataset: Any) -> tuple[Any, Any, Any, int]:
    """The Trainer's pieces for ``cfg``: its config as the task resolved it (a table: its
    features), a fresh model and a repeating, shuffled train stream (dict batches for a table)."""
    from tfpilot.training.precision import choose_precision
    from tfpilot.training.setup import build_model, seed_everything, task_for

    t = cfg.train
    seed_everything(t.seed, False)
    cfg, data = task_for(cfg).prepare(cfg)
    steps_per_epoch = t.steps_per_epoch or max(math.ceil(len(data.splits["train"]) / t.batch_size), 1)
    if model is None:
        model = build_model(cfg, data, choose_precision(t.precision))
    from tfpilot.models.ydf_layers import forest_heads

    if forest_heads(model):
        raise UserError(f"{cfg.model.name} is trained by YDF's learner, which has no learning rate: the LR range "
                        "test does not apply (set the trees with model.params, e.g. shrinkage)")
    if dataset is None:
        one_hot = cfg.one_hot_labels and model.outputs[0].shape[-1] > 1
        dataset = data.pipeline("train", t.batch_size, training=True, seed=t.seed,
                                shuffle_buffer=cfg.data.shuffle_buffer,
                                one_hot=data.num_classes if one_hot else None).repeat()
    return cfg, model, dataset, steps_per_epoch
