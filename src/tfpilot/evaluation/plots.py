"""The report's plots, drawn with matplotlib's Agg canvas (no display, no global pyplot state).

Every function returns a ``matplotlib.figure.Figure``; :func:`to_png` renders one to PNG
bytes (and optionally a file).

Example:
    >>> import numpy as np
    >>> from tfpilot.evaluation.plots import confusion_matrices, to_png
    >>> fig = confusion_matrices(np.array([[5, 1], [2, 4]]), ["cat", "dog"])
    >>> to_png(fig)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfpilot.errors import UserError
from tfpilot.plotting import ACCENT, TRAIN, VAL, new_figure, to_png

__all__ = ["ACCENT", "TRAIN", "VAL", "new_figure", "to_png"]  # re-exported: the report's plot kit

def _style(ax: Any, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def training_curves(history: Sequence[dict[str, float]], heads: Sequence[str] = ()) -> Any:
    """Loss and accuracy (or, with ``heads``, the total loss and each head's), train and
    validation, and the learning rate, per epoch.

    Args:
        history: one dict per epoch (``history.csv`` rows): loss, accuracy (``<head>_loss``),
            their ``val_`` twins, learning_rate (the rate of the epoch's first step); missing keys
            are left out.
        heads: the output keys of a table model. A figure with no values in ``history`` is
            left out (a one-head model's per-head loss is its loss).

    Example:
        >>> fig = training_curves([{"loss": 0.9, "accuracy": 0.6}, {"loss": 0.5, "accuracy": 0.8}])
        >>> len(fig.axes)
        3
    """
    if not history:
        raise UserError("no training history: the run has no history.csv rows")
    keys = ["loss", *(f"{h}_loss" for h in heads)] if heads else ["loss", "accuracy"]
    # no empty frames: a one-head table model records no per-head loss, a table model no accuracy
    keys = [k for k in keys if any(k in row or f"val_{k}" in row for row in history)] or ["loss"]
    epochs = np.array([row.get("epoch", i) for i, row in enumerate(history)], dtype=float) + 1
    fig = new_figure(min(4.0 * (len(keys) + 1), 16), 3.4)
    axes = fig.subplots(1, len(keys) + 1)
    for ax, key in zip(axes, keys):
        for prefix, colour, label in (("", TRAIN, "train"), ("val_", VAL, "validation")):
            values = [row.get(prefix + key, np.nan) for row in history]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, marker="o", ms=4, color=colour, label=label)
        _style(ax, key.replace("_", " ").capitalize(), "epoch")
        ax.legend(frameon=False)
    lr = [row.get("learning_rate", np.nan) for row in history]
    ax = axes[-1]
    if not np.all(np.isnan(lr)):
        ax.plot(epochs, lr, marker="o", ms=4, color=ACCENT)
        if np.nanmin(lr) > 0 and np.nanmax(lr) / np.nanmin(lr) > 20:
            ax.set_yscale("log")
        elif np.nanmax(lr) == np.nanmin(lr):  # constant: show it against zero, not a magnified flat line
            ax.set_ylim(0, 1.5 * np.nanmax(lr) or 1.0)
    else:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    _style(ax, "Learning rate (epoch's first step)", "epoch")
    for a in axes:
        if len(epochs) <= 15:
            a.set_xticks(epochs)
        else:
            a.xaxis.get_major_locator().set_params(integer=True)
        a.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
    return fig


def confusion_matrices(cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str]) -> Any:
    """Two heatmaps of the confusion matrix: counts, and normalised per true class (rows).

    Args:
        cm: (C, C) counts, rows are true classes, columns predicted.
        class_names: the C class names.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {cm.shape} does not match {n} class names")
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    side = min(max(4.0, 0.45 * n + 2.5), 11.0)
    fig = new_figure(2 * side + 1, side)
    axes = fig.subplots(1, 2)
    annotate = n <= 20
    for ax, values, title, fmt in ((axes[0], cm, "Counts", "d"), (axes[1], norm, "Normalised by true class", ".2f")):
        im = ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() or 1)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ticks = np.arange(n)
        ax.set_xticks(ticks, [str(c) for c in class_names], rotation=45 if n > 4 else 0,
                      ha="right" if n > 4 else "center", fontsize=8 if n > 12 else 9)
        ax.set_yticks(ticks, [str(c) for c in class_names], fontsize=8 if n > 12 else 9)
        if annotate:
            threshold = (values.max() or 1) / 2
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=7 if n > 10 else 9,
                            color="white" if values[i, j] > threshold else "#111827")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def reliability_diagram(bins: Any, title: str = "Reliability diagram") -> Any:
    """Accuracy against confidence per bin (with the diagonal of perfect calibration),
    and how many examples each bin holds.

    Args:
        bins: a :class:`~tfpilot.evaluation.calibration.ReliabilityBins`.
        title: the figure's title (its ECE is added).
    """
    edges = np.asarray(bins.edges)
    width = np.diff(edges)
    centres = edges[:-1] + width / 2
    filled = np.asarray(bins.counts) > 0
    fig = new_figure(5.6, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], ls="--", color="#6b7280", label="perfectly calibrated")
    acc = np.where(filled, bins.accuracy, 0.0)
    conf = np.where(filled, bins.confidence, 0.0)
    top.bar(centres, acc, width=width, edgecolor="white", color=TRAIN, label="accuracy")
    top.plot(centres[filled], conf[filled], ls="none", marker="D", ms=5, color=VAL, label="mean confidence")
    top.vlines(centres[filled], np.minimum(acc, conf)[filled], np.maximum(acc, conf)[filled], color=VAL, lw=1.5)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    _style(top, f"{title} (ECE {bins.ece:.3f})", "", "accuracy")
    top.legend(frameon=False, loc="upper left", fontsize=9)
    bottom.bar(centres, bins.counts, width=width, color="#9ca3af", edgecolor="white")
    _style(bottom, "", "confidence (top-label probability)", "examples")
    return fig


def binary_curves_figure(curves: dict[str, Any], positive_name: str) -> Any:
    """ROC and precision-recall curves side by side.

    Args:
        curves: the result of :func:`~tfpilot.evaluation.calibration.binary_curves`.
        positive_name: the positive class's name (for the titles).
    """
    fig = new_figure(10, 4.2)
    roc_ax, pr_ax = fig.subplots(1, 2)
    roc = curves["roc"]
    roc_ax.plot(roc["fpr"], roc["tpr"], color=TRAIN, lw=2, label=f"AUC {roc['auc']:.3f}")
    roc_ax.plot([0, 1], [0, 1], ls="--", color="#6b7280", label="chance")
    _style(roc_ax, f"ROC (positive: {positive_name})", "false positive rate", "true positive rate")
    roc_ax.legend(frameon=False, loc="lower right")
    pr = curves["pr"]
    pr_ax.plot(pr["recall"], pr["precision"], color=VAL, lw=2, label=f"AP {pr['average_precision']:.3f}")
    pr_ax.axhline(curves["prevalence"], ls="--", color="#6b7280", label="chance")
    _style(pr_ax, f"Precision-recall (positive: {positive_name})", "recall", "precision")
    pr_ax.set_ylim(0, 1.02)
    pr_ax.legend(frameon=False, loc="lower left")
    return fig


def class_balance(class_counts: dict[str, dict[str, int]]) -> Any:
    """Examples per class in each split, as grouped bars.

    Args:
        class_counts: ``{split: {class_name: count}}`` (``data_report.json``'s class_counts).
    """
    splits = [s for s in ("train", "val", "test") if s in class_counts] + \
             [s for s in class_counts if s not in ("train", "val", "test")]
    if not splits:
        raise ValueError("no class counts to plot")
    names = list(class_counts[splits[0]])
    x = np.arange(len(names))
    width = 0.8 / len(splits)
    fig = new_figure(min(max(6.0, 0.5 * len(names) + 3), 14.0), 3.4)
    ax = fig.subplots()
    colours = {"train": TRAIN, "val": VAL, "test": ACCENT}
    for i, split in enumerate(splits):
        counts = [class_counts[split].get(name, 0) for name in names]
        ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts, width, label=split, color=colours.get(split))
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    _style(ax, "Class balance", "", "examples")
    ax.legend(frameon=False, ncols=len(splits), loc="lower center", bbox_to_anchor=(0.5, 1.06))
    return fig


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8) -> Any:
    """A grid of uint8 images (H, W[, C]) with a title over each.

    Args:
        images: the images.
        titles: one short title per image (e.g. "3 -> 5").
        columns: images per row.
    """
    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    n = max(len(images), 1)
    columns = min(columns, n)
    rows = int(np.ceil(n / columns))
    fig = new_figure(1.6 * columns, 1.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, img, title in zip(axes, images, titles):
        img = np.asarray(img)
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=7)
    return fig


def predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, name: str, baseline: float | None = None) -> Any:
    """A number head's predictions against the true values, with the diagonal (perfect) and the baseline.

    Example:
        >>> len(predicted_vs_true(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.4]), "price").axes)
        1
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    ax = new_figure(5.2, 4.6).subplots()
    ax.scatter(y_true, y_pred, s=10, alpha=0.6, color=TRAIN, edgecolors="none", label="rows")
    lo = float(min(y_true.min(), y_pred.min())) if len(y_true) else 0.0
    hi = float(max(y_true.max(), y_pred.max())) if len(y_true) else 1.0
    ax.plot([lo, hi], [lo, hi], color=ACCENT, lw=1.5, label="predicted = true")
    if baseline is not None:
        ax.axhline(baseline, color=VAL, lw=1, ls="--", label=f"baseline (train mean {baseline:.4g})")
    _style(ax, f"{name}: predicted vs true", f"true {name}", f"predicted {name}")
    ax.legend(frameon=False, fontsize=8)
    return ax.figure


def residual_histogram(y_true: np.ndarray, y_pred: np.ndarray, name: str, bins: int = 30) -> Any:
    """The histogram of a number head's residuals (predicted - true), with their mean."""
    resid = np.asarray(y_pred, float) - np.asarray(y_true, float)
    ax = new_figure(5.2, 4.6).subplots()
    ax.hist(resid, bins=bins, color=TRAIN, alpha=0.8)
    ax.axvline(0.0, color=ACCENT, lw=1.5)
    if len(resid):
        ax.axvline(float(resid.mean()), color=VAL, lw=1, ls="--", label=f"mean {resid.mean():.3g}")
        ax.legend(frameon=False, fontsize=8)
    _style(ax, f"{name}: residuals", f"residual (predicted - true {name})", "rows")
    return ax.figure
