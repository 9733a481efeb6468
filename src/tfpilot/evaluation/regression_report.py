"""Plots of a number head: predicted against true values, and the residuals' histogram.

Example:
    >>> import numpy as np
    >>> fig = predicted_vs_true(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.4]), "price")
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfpilot.plotting import ACCENT, TRAIN, VAL, new_figure


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, name: str, baseline: float | None = None) -> Any:
    """A scatter of predictions against true values, with the diagonal (perfect) and the baseline."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    fig = new_figure(5.2, 4.6)
    ax = fig.subplots()
    ax.scatter(y_true, y_pred, s=10, alpha=0.6, color=TRAIN, edgecolors="none", label="rows")
    lo = float(min(y_true.min(), y_pred.min())) if len(y_true) else 0.0
    hi = float(max(y_true.max(), y_pred.max())) if len(y_true) else 1.0
    ax.plot([lo, hi], [lo, hi], color=ACCENT, lw=1.5, label="predicted = true")
    if baseline is not None:
        ax.axhline(baseline, color=VAL, lw=1, ls="--", label=f"baseline (train mean {baseline:.4g})")
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"predicted {name}")
    ax.set_title(f"{name}: predicted vs true", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return fig


def residual_histogram(y_true: np.ndarray, y_pred: np.ndarray, name: str, bins: int = 30) -> Any:
    """The histogram of residuals (predicted - true), with their mean."""
    resid = np.asarray(y_pred, float) - np.asarray(y_true, float)
    fig = new_figure(5.2, 4.6)
    ax = fig.subplots()
    ax.hist(resid, bins=bins, color=TRAIN, alpha=0.8)
    ax.axvline(0.0, color=ACCENT, lw=1.5)
    if len(resid):
        ax.axvline(float(resid.mean()), color=VAL, lw=1, ls="--", label=f"mean {resid.mean():.3g}")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel(f"residual (predicted - true {name})")
    ax.set_ylabel("rows")
    ax.set_title(f"{name}: residuals", fontsize=11)
    ax.grid(True, alpha=0.3)
    return fig


def head_curves(history: list[dict[str, float]], keys: list[str]) -> Any:
    """Per-epoch curves of the total loss and of each head's loss, train and validation."""
    epochs = np.arange(1, len(history) + 1)
    panels = ["loss", *[f"{k}_loss" for k in keys]]
    fig = new_figure(min(4.0 * len(panels), 16), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, key in zip(axes, panels):
        for prefix, colour, label in (("", TRAIN, "train"), ("val_", VAL, "validation")):
            values = [row.get(prefix + key, np.nan) for row in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o", ms=3, color=colour, label=label)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(frameon=False, fontsize=8)
    return fig
