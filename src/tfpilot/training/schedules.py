"""The learning-rate schedule registry: constant, cosine, warmup_cosine, one_cycle,
exponential, step, cosine_restarts. Each builder returns a float or a serializable Keras
schedule, and registers the ``ScheduleConfig`` keys it reads (``keys=``): the config rejects
any other key set for it. ``warmup_epochs`` works with every schedule: cosine and one_cycle
warm up in their own curve, the others through :class:`LinearWarmup`.

Example:
    >>> from tfpilot.config import ScheduleConfig
    >>> from tfpilot.training.schedules import create_schedule
    >>> sched = create_schedule(ScheduleConfig(name="one_cycle"), 1e-2, steps_per_epoch=10, epochs=2)
    >>> round(float(sched(0)), 5), round(float(sched(19)), 5) < 1e-4
    (0.0004, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from tfpilot.config.schema import ScheduleConfig
from tfpilot.registry import SCHEDULES, serializable

ScheduleBuilder = Callable[[ScheduleConfig, float, int, int], Any]


@serializable
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle: linear warm-up from ``max_lr/div_factor`` to ``max_lr``, then cosine
    annealing to ``max_lr/final_div_factor`` (Smith & Topin, 2018).

    Args:
        max_lr: peak learning rate.
        total_steps: length of the cycle in optimizer steps.
        pct_start: fraction of the cycle spent warming up.
        div_factor: initial LR is ``max_lr / div_factor``.
        final_div_factor: final LR is ``max_lr / final_div_factor``.
    """

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.25,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> None:
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warm = self.pct_start * self.total_steps  # 0: no warm-up, it starts at the peak
        rest = max(1.0, self.total_steps - warm - 1.0)
        start, end = self.max_lr / self.div_factor, self.max_lr / self.final_div_factor
        up = start + (self.max_lr - start) * ops.minimum(step / max(warm, 1.0), 1.0)
        t = ops.clip((step - warm) / rest, 0.0, 1.0)
        down = end + (self.max_lr - end) * 0.5 * (1.0 + ops.cos(math.pi * t))
        return ops.where(step < warm, up, down)

    def get_config(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor}


@serializable
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule scaled by a factor that grows linearly from ``start_factor`` to 1 over the
    first ``warmup_steps`` steps; from then on, the schedule unchanged (not shifted: a step
    schedule still drops at its own epochs).

    Args:
        schedule: the schedule, or a constant learning rate.
        warmup_steps: optimizer steps of the warm-up (> 0).
        start_factor: the factor at step 0.

    Example:
        >>> warm = LinearWarmup(0.1, warmup_steps=10)
        >>> round(float(warm(0)), 4), round(float(warm(5)), 4), round(float(warm(10)), 4)
        (0.001, 0.0505, 0.1)
    """

    def __init__(self, schedule: Any, warmup_steps: int, start_factor: float = 0.01) -> None:
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.start_factor = float(start_factor)

    def __call__(self, step: Any) -> Any:
        base = self.schedule(step) if callable(self.schedule) else self.schedule
        progress = ops.minimum(ops.cast(step, "float32") / float(self.warmup_steps), 1.0)
        return base * (self.start_factor + (1.0 - self.start_factor) * progress)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {"schedule": schedule, "warmup_steps": self.warmup_steps, "start_factor": self.start_factor}


def _with_warmup(cfg: ScheduleConfig, schedule: Any, steps_per_epoch: int) -> Any:
    """``schedule`` behind a :class:`LinearWarmup` of ``cfg.warmup_epochs`` (unset or 0: none)."""
    steps = int((cfg.warmup_epochs or 0.0) * steps_per_epoch)
    return LinearWarmup(schedule, steps) if steps else schedule


@SCHEDULES.register("constant", keys=("warmup_epochs",))
def constant(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """The same learning rate throughout, after an optional linear warm-up (without one,
    ReduceLROnPlateau may lower it)."""
    return _with_warmup(cfg, lr, steps_per_epoch)


@SCHEDULES.register("cosine", keys=("warmup_epochs", "min_lr_ratio"))
def cosine(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Cosine decay to ``min_lr_ratio * lr``, after an optional linear warm-up."""
    total = steps_per_epoch * epochs
    warmup = int((cfg.warmup_epochs or 0.0) * steps_per_epoch)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            lr / 100.0, max(total - warmup, 1), alpha=cfg.min_lr_ratio, warmup_target=lr, warmup_steps=warmup
        )
    return keras.optimizers.schedules.CosineDecay(lr, max(total, 1), alpha=cfg.min_lr_ratio)


@SCHEDULES.register("warmup_cosine", keys=("warmup_epochs", "min_lr_ratio"))
def warmup_cosine(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Linear warm-up (``warmup_epochs``, default 5% of training) then cosine decay."""
    if cfg.warmup_epochs is None:
        cfg = cfg.model_copy(update={"warmup_epochs": max(epochs * 0.05, 1.0 / steps_per_epoch)})
    return cosine(cfg, lr, steps_per_epoch, epochs)


@SCHEDULES.register("one_cycle", keys=("warmup_epochs",))
def one_cycle(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """One-cycle policy peaking at ``lr`` (warm-up: ``warmup_epochs``, default 25% of training;
    0: it starts at the peak)."""
    total = steps_per_epoch * epochs
    pct = 0.25 if cfg.warmup_epochs is None else min(cfg.warmup_epochs / epochs, 0.9)
    return OneCycle(lr, total, pct_start=pct)


@SCHEDULES.register(
    "cosine_restarts", keys=("warmup_epochs", "min_lr_ratio", "cycle_epochs", "cycle_mult", "peak_mult"))
def cosine_restarts(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """SGDR: cosine cycles of ``cycle_epochs`` x ``cycle_mult``^i epochs, peaks x ``peak_mult``^i.

    A short first cycle anneals early (a usable model after ``cycle_epochs``); later,
    longer, gentler cycles keep improving it.
    """
    restarts = keras.optimizers.schedules.CosineDecayRestarts(
        lr, max(int(cfg.cycle_epochs * steps_per_epoch), 1), t_mul=cfg.cycle_mult, m_mul=cfg.peak_mult,
        alpha=cfg.min_lr_ratio,
    )
    return _with_warmup(cfg, restarts, steps_per_epoch)


@SCHEDULES.register("exponential", keys=("warmup_epochs", "decay_rate"))
def exponential(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Multiply the rate by ``decay_rate`` every epoch (smoothly)."""
    return _with_warmup(cfg, keras.optimizers.schedules.ExponentialDecay(lr, steps_per_epoch, cfg.decay_rate),
                        steps_per_epoch)


@SCHEDULES.register("step", keys=("warmup_epochs", "step_epochs", "step_factor"))
def step(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Multiply the rate by ``step_factor`` every ``step_epochs`` epochs."""
    drops = keras.optimizers.schedules.ExponentialDecay(
        lr, steps_per_epoch * cfg.step_epochs, cfg.step_factor, staircase=True
    )
    return _with_warmup(cfg, drops, steps_per_epoch)


def create_schedule(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """The configured schedule for a run of ``epochs`` x ``steps_per_epoch`` steps."""
    return SCHEDULES.get(cfg.name)(cfg, lr, max(int(steps_per_epoch), 1), int(epochs))
