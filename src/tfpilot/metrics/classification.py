"""Classification metrics from labels and predicted probabilities (scikit-learn).

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> m = classification_metrics(np.array([0, 1, 1]), probs, ["neg", "pos"], k=1)
    >>> round(m["accuracy"], 4), m["confusion_matrix"]
    (0.6667, [[1, 0], [1, 1]])
"""

from __future__ import annotations

from typing import Any

import numpy as np


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Model outputs -> (N, num_classes) probabilities; a single sigmoid unit becomes 2 columns."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if outputs.shape[1] == 1:
        p = outputs[:, 0]
        return np.stack([1.0 - p, p], axis=1)
    return outputs


def top_k_accuracy(y_true: np.ndarray, probs: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean(np.any(top == y_true[:, None], axis=1)))


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    return float(-np.mean(np.log(p)))


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], k: int = 5
) -> dict[str, Any]:
    """Accuracy, loss, top-k, per-class precision/recall/F1, macro-F1, balanced accuracy,
    and the confusion matrix (rows: true class, columns: predicted).

    Args:
        y_true: integer labels (N,).
        probs: probabilities (N, C) or sigmoid outputs (N,) / (N, 1).
        class_names: the C class names.
        k: k of the top-k accuracy.
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = to_probabilities(probs)
    y_pred = probs.argmax(axis=1)
    labels = np.arange(len(class_names))
    p, r, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    wp, wr, wf, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    return {
        "accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else 0.0,
        "loss": cross_entropy(y_true, probs) if len(y_true) else 0.0,
        "top_k_accuracy": top_k_accuracy(y_true, probs, k) if len(y_true) else 0.0,
        "top_k": int(min(k, probs.shape[1])),
        "macro_precision": float(np.mean(p)),
        "macro_recall": float(np.mean(r)),
        "macro_f1": float(np.mean(f1)),
        "weighted_precision": float(wp),
        "weighted_recall": float(wr),
        "weighted_f1": float(wf),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "num_examples": int(len(y_true)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def predict_probabilities(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over a batched ``(x, y)`` tf.data dataset; returns ``(y_true, probs)``.

    Uses direct model calls batch by batch (cheaper than ``model.predict``'s setup on
    small data), in inference mode.
    """
    ys, ps = [], []
    for x, y in dataset:
        ps.append(np.asarray(model(x, training=False)))
        y = np.asarray(y)
        ys.append(y.argmax(axis=1) if y.ndim == 2 else y)
    if not ys:
        return np.zeros((0,), np.int64), np.zeros((0, 0))
    return np.concatenate(ys).astype(np.int64), to_probabilities(np.concatenate(ps))
