"""Regression metrics from true values and predictions: pure NumPy / scikit-learn.

Example:
    >>> import numpy as np
    >>> m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), baseline=2.0)
    >>> m["mae"], m["baseline_mae"], round(m["r2"], 3)
    (0.3333333333333333, 0.6666666666666666, 0.5)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error (in %), over the rows whose true value is not 0."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    nonzero = np.abs(y_true) > 1e-12
    if not nonzero.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs((y_pred[nonzero] - y_true[nonzero]) / y_true[nonzero])))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, baseline: float | None = None) -> dict[str, Any]:
    """MAE, RMSE, R², MAPE (and max error), plus those of predicting ``baseline`` for every row.

    Args:
        y_true: true values (N,).
        y_pred: predictions (N,).
        baseline: the constant a trivial model predicts -- the training split's mean; its
            MAE and RMSE are the bar a model must clear.
    """
    from sklearn.metrics import r2_score

    y_true = np.asarray(y_true, np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, np.float64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} true values but {len(y_pred)} predictions")
    err = y_pred - y_true
    out: dict[str, Any] = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        "mape": mape(y_true, y_pred),
        "max_error": float(np.max(np.abs(err))) if len(err) else float("nan"),
        "num_examples": int(len(y_true)),
    }
    if baseline is not None:
        base = np.full_like(y_true, float(baseline))
        out["baseline"] = float(baseline)
        out["baseline_mae"] = float(np.mean(np.abs(base - y_true)))
        out["baseline_rmse"] = float(np.sqrt(np.mean((base - y_true) ** 2)))
    return out
