"""Metrics of a table model, one block per head: classification metrics for category and
binary heads, regression metrics for number heads, each beside a trivial baseline
(the training split's most frequent class, or its mean).

Example:
    >>> import numpy as np
    >>> from tfpilot.spec import FeatureSpec, TableSpec
    >>> spec = TableSpec((FeatureSpec("x", "number"),), (FeatureSpec("y", "number"),))
    >>> m = head_metrics(spec, {"y": np.array([1.0, 3.0])}, {"y": np.array([1.0, 2.0])}, {"y": 2.0})
    >>> m["num_examples"], m["heads"]["y"]["mae"], m["heads"]["y"]["baseline_mae"]
    (2, 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfpilot.metrics.classification import classification_metrics
from tfpilot.metrics.regression import regression_metrics


def as_probabilities(kind: str, out: np.ndarray) -> np.ndarray:
    """A head's output as (N, C) class probabilities (a binary head's sigmoid as two columns)."""
    out = np.asarray(out, np.float64)
    if kind == "binary":
        p = out.reshape(-1)
        return np.stack([1.0 - p, p], axis=1)
    return out


def baselines(spec: Any, train_targets: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Output key -> the trivial prediction: the training mean (numbers) or most frequent class id."""
    out = {}
    for o in spec.outputs:
        y = np.asarray(train_targets[o.key])
        out[o.key] = float(y.mean()) if o.kind == "number" else float(np.bincount(y.astype(np.int64)).argmax())
    return out


def head_metrics(spec: Any, targets: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray],
                 baseline: Mapping[str, float] | None = None, top_k: int = 5) -> dict[str, Any]:
    """``{"num_examples", "heads": {output name: metrics}}`` of one split.

    Args:
        spec: the model's :class:`~tfpilot.spec.TableSpec`.
        targets: output key -> true class ids / values.
        outputs: output key -> the model's outputs.
        baseline: output key -> :func:`baselines`' trivial prediction.
        top_k: k of the top-k accuracy of category heads.
    """
    heads: dict[str, Any] = {}
    n = 0
    for o in spec.outputs:
        y = np.asarray(targets[o.key])
        n = len(y)
        b = None if baseline is None else baseline.get(o.key)
        if o.kind == "number":
            heads[o.name] = {"kind": "number", **regression_metrics(y, outputs[o.key], baseline=b)}
            continue
        probs = as_probabilities(o.kind, outputs[o.key])
        m = classification_metrics(y.astype(np.int64), probs, list(o.classes), k=min(top_k, len(o.classes)))
        m["kind"] = o.kind
        if b is not None:
            m["baseline_accuracy"] = float(np.mean(y.astype(np.int64) == int(b)))
        heads[o.name] = m
    return {"num_examples": n, "heads": heads}


def headline(head: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers of one head worth a line: accuracy and macro F1, or MAE/RMSE/R²/MAPE."""
    keys = (("mae", "rmse", "r2", "mape", "baseline_mae") if head.get("kind") == "number"
            else ("accuracy", "macro_f1", "top_k_accuracy", "baseline_accuracy"))
    every_class = head.get("top_k", 0) >= len(head.get("per_class", ()))  # top-k of k classes says nothing
    return {k: head[k] for k in keys if k in head and not (k == "top_k_accuracy" and every_class)}
