"""Checks of a table's columns: types, missing values, constant and id-like columns, and
target leakage by one column alone.

Leakage is measured honestly: a one-column model of the class (or number) head is fitted on
the training split and scored on the evaluation splits. A column that predicts the target
almost perfectly alone (accuracy >= 0.99 well above the majority class, or R^2 >= 0.99) is
usually a copy of the target or something computed after it.

Example:
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"id": range(40), "c": 1, "x": np.r_[np.zeros(20), np.ones(20)],
    ...                       "y": ["a"] * 20 + ["b"] * 20})
    >>> cols = {c["name"]: c for c in column_stats(frame)}
    >>> cols["id"]["id_like"], cols["c"]["constant"], cols["x"]["missing"]
    (True, True, 0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: One column alone predicting the target this well is reported as leakage.
LEAK_ACCURACY = 0.99
LEAK_R2 = 0.99


def column_stats(frame: Any) -> list[dict[str, Any]]:
    """Per column: its pandas dtype, missing cells, distinct values, constant, id-like.

    Args:
        frame: the table as read (a pandas DataFrame).
    """
    out = []
    n = len(frame)
    for name in frame.columns:
        col = frame[name]
        text = col.astype(str).str.strip()
        missing = col.isna().to_numpy() | (text == "").to_numpy()
        present = col[~missing]
        distinct = int(present.astype(str).nunique())
        integral = present.dtype.kind in "iu" or (present.dtype.kind == "O" and not _numeric(present))
        out.append({
            "name": str(name), "dtype": str(col.dtype), "missing": int(missing.sum()),
            "missing_fraction": round(float(missing.mean()) if n else 0.0, 4), "distinct": distinct,
            "constant": distinct <= 1,
            "id_like": bool(n >= 20 and distinct == len(present) and integral and len(present) >= 0.95 * n),
            "missing_rows": [int(r) + 1 for r in np.flatnonzero(missing)[:50]],
        })
    return out


def _numeric(series: Any) -> bool:
    import pandas as pd

    return bool(pd.to_numeric(series, errors="coerce").notna().mean() > 0.95)


def _lookup_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Accuracy of "the majority class of this value in training" on the test rows."""
    from collections import Counter, defaultdict

    votes: dict[str, Counter] = defaultdict(Counter)
    for v, y in zip(train_x.astype(str), train_y):
        votes[v][int(y)] += 1
    fallback = Counter(int(y) for y in train_y).most_common(1)[0][0]
    pred = np.array([votes[v].most_common(1)[0][0] if v in votes else fallback for v in test_x.astype(str)])
    return float((pred == test_y).mean())


def _tree_score(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                classify: bool) -> float:
    """Held-out accuracy (or R^2) of a depth-4 tree on one number column."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    model = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(max_depth=4, random_state=0)
    model.fit(train_x.reshape(-1, 1).astype(np.float64), train_y)
    return float(model.score(test_x.reshape(-1, 1).astype(np.float64), test_y))


def single_column_leakage(train: dict[str, np.ndarray], held: dict[str, np.ndarray], kinds: dict[str, str],
                          y_train: np.ndarray, y_held: np.ndarray, classify: bool) -> list[dict[str, Any]]:
    """How well each input column alone predicts the target, fitted on train, scored on ``held``.

    Args:
        train, held: column name -> values of the training / evaluation rows.
        kinds: column name -> ``number``, ``category``, ``text``, ``date`` or ``image`` (skipped).
        y_train, y_held: the target (class ids, or numbers when not ``classify``).
        classify: a class head (accuracy) or a number head (R^2).

    Returns:
        one entry per column scored: ``{"column", "score", "metric", "baseline", "leak"}``.
    """
    if not len(y_held) or not len(y_train):
        return []
    baseline = float(np.mean(y_held == np.bincount(y_train.astype(np.int64)).argmax())) if classify else 0.0
    out = []
    for name, kind in kinds.items():
        if kind == "image":
            continue
        if kind == "number":
            score = _tree_score(np.nan_to_num(train[name], nan=-1e30), y_train,
                                np.nan_to_num(held[name], nan=-1e30), y_held, classify)
        elif classify:
            score = _lookup_accuracy(train[name], y_train, held[name], y_held)
        else:
            continue
        leak = score >= LEAK_ACCURACY and score > baseline + 0.05 if classify else score >= LEAK_R2
        out.append({"column": name, "score": round(score, 4), "metric": "accuracy" if classify else "r2",
                    "baseline": round(baseline, 4), "leak": bool(leak)})
    return sorted(out, key=lambda e: -e["score"])
