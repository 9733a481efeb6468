"""Calibration for the report: reliability bins and ECE (defined in
:mod:`tfpilot.metrics.calibration`, where training records them too), plus ROC / PR for
binary tasks.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(expected_calibration_error(np.array([0, 1, 1, 1]), probs, n_bins=10), 4)
    0.4
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfpilot.metrics import to_probabilities
from tfpilot.metrics.calibration import ReliabilityBins, expected_calibration_error, reliability_bins

__all__ = ["ReliabilityBins", "binary_curves", "expected_calibration_error", "reliability_bins"]


def binary_curves(y_true: np.ndarray, probs: np.ndarray, positive: int = 1) -> dict[str, Any]:
    """ROC and precision-recall curves with their areas, for a two-class task (scikit-learn).

    Args:
        y_true: integer labels (N,) in {0, 1}.
        probs: probabilities (N, 2), or sigmoid outputs (N,) / (N, 1).
        positive: which class is "positive".

    Returns:
        ``{"roc": {"fpr", "tpr", "auc"}, "pr": {"precision", "recall", "average_precision"},
        "positive": positive, "prevalence": float}`` (curves as lists).

    Example:
        >>> import numpy as np
        >>> c = binary_curves(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> c["roc"]["auc"]
        0.75
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = to_probabilities(probs)
    if probs.shape[1] != 2:
        raise ValueError(f"ROC and PR curves need a two-class task; these probabilities have {probs.shape[1]} classes")
    target = (y_true == positive).astype(np.int64)
    if target.min(initial=1) == target.max(initial=0):
        raise ValueError("ROC and PR curves need examples of both classes; only one class is present")
    score = probs[:, positive]
    fpr, tpr, _ = roc_curve(target, score)
    precision, recall, _ = precision_recall_curve(target, score)
    return {
        "positive": int(positive),
        "prevalence": float(target.mean()),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(roc_auc_score(target, score))},
        "pr": {"precision": precision.tolist(), "recall": recall.tolist(),
               "average_precision": float(average_precision_score(target, score))},
    }
