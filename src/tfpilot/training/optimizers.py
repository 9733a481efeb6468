"""The optimizer registry: SGD (momentum), Adam, AdamW, RMSprop, Adagrad.

Example:
    >>> from tfpilot.config import OptimizerConfig
    >>> from tfpilot.training.optimizers import create_optimizer
    >>> opt = create_optimizer(OptimizerConfig(name="sgd", learning_rate=0.1))
    >>> type(opt).__name__
    'SGD'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tfpilot.config.schema import OptimizerConfig
from tfpilot.registry import OPTIMIZERS

OptimizerBuilder = Callable[[OptimizerConfig, Any, dict[str, Any]], Any]


def _common(cfg: OptimizerConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if cfg.clipnorm:
        kw["clipnorm"] = cfg.clipnorm
    if cfg.clipvalue:
        kw["clipvalue"] = cfg.clipvalue
    if cfg.weight_decay:
        kw["weight_decay"] = cfg.weight_decay
    if cfg.gradient_accumulation_steps:
        kw["gradient_accumulation_steps"] = cfg.gradient_accumulation_steps
    if cfg.ema:
        kw.update(use_ema=True, ema_momentum=cfg.ema_momentum)
    return kw


@OPTIMIZERS.register("adam")
def adam(cfg: OptimizerConfig, lr: Any, kw: dict[str, Any]) -> Any:
    """Adam."""
    import keras

    return keras.optimizers.Adam(learning_rate=lr, **kw)


@OPTIMIZERS.register("adamw")
def adamw(cfg: OptimizerConfig, lr: Any, kw: dict[str, Any]) -> Any:
    """AdamW (decoupled weight decay; default 1e-4)."""
    import keras

    kw.setdefault("weight_decay", 1e-4)
    return keras.optimizers.AdamW(learning_rate=lr, **kw)


@OPTIMIZERS.register("sgd")
def sgd(cfg: OptimizerConfig, lr: Any, kw: dict[str, Any]) -> Any:
    """SGD with momentum (and optional Nesterov)."""
    import keras

    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9 if cfg.momentum is None else cfg.momentum, nesterov=cfg.nesterov, **kw)


@OPTIMIZERS.register("rmsprop")
def rmsprop(cfg: OptimizerConfig, lr: Any, kw: dict[str, Any]) -> Any:
    """RMSprop."""
    import keras

    return keras.optimizers.RMSprop(learning_rate=lr, momentum=cfg.momentum or 0.0, **kw)


@OPTIMIZERS.register("adagrad")
def adagrad(cfg: OptimizerConfig, lr: Any, kw: dict[str, Any]) -> Any:
    """Adagrad."""
    import keras

    return keras.optimizers.Adagrad(learning_rate=lr, **kw)


def create_optimizer(cfg: OptimizerConfig, learning_rate: Any = None, **extra: Any) -> Any:
    """Build the configured optimizer; ``learning_rate`` may be a schedule."""
    kw = {**_common(cfg), **extra}
    lr = cfg.learning_rate if learning_rate is None else learning_rate
    return OPTIMIZERS.get(cfg.name)(cfg, lr, kw)
