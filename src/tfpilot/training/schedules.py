"""The learning-rate schedule registry: constant, cosine, warmup_cosine, one_cycle,
exponential, step. Each builder returns a float or a serializable Keras schedule.

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


@SCHEDULES.register("constant")
def constant(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """The same learning rate throughout (ReduceLROnPlateau may still lower it)."""
    return lr


@SCHEDULES.register("cosine")
def cosine(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Cosine decay to ``min_lr_ratio * lr``, after an optional linear warm-up."""
    total = steps_per_epoch * epochs
    warmup = int((cfg.warmup_epochs or 0.0) * steps_per_epoch)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            lr / 100.0, max(total - warmup, 1), alpha=cfg.min_lr_ratio, warmup_target=lr, warmup_steps=warmup
        )
    return keras.optimizers.schedules.CosineDecay(lr, max(total, 1), alpha=cfg.min_lr_ratio)


@SCHEDULES.register("warmup_cosine")
def warmup_cosine(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Linear warm-up (``warmup_epochs``, default 5% of training) then cosine decay."""
    if cfg.warmup_epochs is None:
        cfg = cfg.model_copy(update={"warmup_epochs": max(epochs * 0.05, 1.0 / steps_per_epoch)})
    return cosine(cfg, lr, steps_per_epoch, epochs)


@SCHEDULES.register("one_cycle")
def one_cycle(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """One-cycle policy peaking at ``lr`` (warm-up: ``warmup_epochs``, default 25% of training;
    0: it starts at the peak)."""
    total = steps_per_epoch * epochs
    pct = 0.25 if cfg.warmup_epochs is None else min(cfg.warmup_epochs / epochs, 0.9)
    return OneCycle(lr, total, pct_start=pct)


@SCHEDULES.register("cosine_restarts")
def cosine_restarts(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """SGDR: cosine cycles of ``cycle_epochs`` x ``cycle_mult``^i epochs, peaks x ``peak_mult``^i.

    A short first cycle anneals early (a usable model after ``cycle_epochs``); later,
    longer, gentler cycles keep improving it.
    """
    return keras.optimizers.schedules.CosineDecayRestarts(
        lr, max(int(cfg.cycle_epochs * steps_per_epoch), 1), t_mul=cfg.cycle_mult, m_mul=cfg.peak_mult,
        alpha=cfg.min_lr_ratio,
    )


@SCHEDULES.register("exponential")
def exponential(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Multiply the rate by ``decay_rate`` every epoch (smoothly)."""
    return keras.optimizers.schedules.ExponentialDecay(lr, steps_per_epoch, cfg.decay_rate)


@SCHEDULES.register("step")
def step(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """Multiply the rate by ``step_factor`` every ``step_epochs`` epochs."""
    return keras.optimizers.schedules.ExponentialDecay(
        lr, steps_per_epoch * cfg.step_epochs, cfg.step_factor, staircase=True
    )


def create_schedule(cfg: ScheduleConfig, lr: float, steps_per_epoch: int, epochs: int) -> Any:
    """The configured schedule for a run of ``epochs`` x ``steps_per_epoch`` steps."""
    return SCHEDULES.get(cfg.name)(cfg, lr, max(int(steps_per_epoch), 1), int(epochs))
