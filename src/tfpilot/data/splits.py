"""Stable, stratified, seeded splits.

Each class is split on its own with a seeded permutation, so every split keeps the class
balance, and the same data + seed always give the same split, whatever the file-system
order (file datasets are sorted first).

Example:
    >>> import numpy as np
    >>> from tfpilot.data.splits import stratified_split
    >>> y = np.array([0] * 10 + [1] * 10)
    >>> parts = stratified_split(y, {"val": 0.2, "test": 0.1}, seed=0)
    >>> sorted((k, len(v)) for k, v in parts.items())
    [('test', 2), ('train', 14), ('val', 4)]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def stratified_split(y: np.ndarray, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split indices of ``y`` into 'train' plus one part per ``fractions`` entry.

    Args:
        y: integer labels.
        fractions: name -> fraction of each class to put in that part (sum < 1).
        seed: seed of the per-class permutations.

    Returns:
        name -> sorted index array; 'train' takes what is left. A class with too few
        examples keeps at least one in 'train'.
    """
    y = np.asarray(y)
    names = [n for n, f in fractions.items() if f > 0]
    out: dict[str, list[np.ndarray]] = {n: [] for n in ["train", *names]}
    rng = np.random.default_rng(seed)
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for name in names:
            n = int(round(fractions[name] * len(idx)))
            n = min(n, max(len(idx) - start - 1, 0))  # keep >= 1 for train
            out[name].append(idx[start : start + n])
            start += n
        out["train"].append(idx[start:])
    return {k: np.sort(np.concatenate(v)) if v else np.array([], np.int64) for k, v in out.items()}


def limit_stratified(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of a class-balanced subset of at most ``limit`` examples (sorted)."""
    y = np.asarray(y)
    if limit >= len(y):
        return np.arange(len(y))
    frac = limit / len(y)
    parts = stratified_split(y, {"keep": frac}, seed)
    keep = parts["keep"]
    if len(keep) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(keep, limit, replace=False))
    return keep
