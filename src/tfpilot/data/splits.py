"""Stable, stratified, seeded splits.

Two ways to split, both deterministic for the same data and seed, whatever the
file-system order:

* **Hash splits** (:func:`hash_split`), for examples with a stable key -- a file's path
  relative to the dataset root, or a text's content. Each example goes to a split by a
  hash of ``(seed, key)`` alone (the TensorFlow speech-commands / image-retraining
  recipe), so adding or removing an example never moves any *other* example between
  splits. Class balance holds in expectation (each class is split on its own thresholds).
* **Per-class permutations** (:func:`stratified_split`), for built-in arrays whose indices
  are fixed: each class is permuted by its own generator seeded with ``(seed, class)``, so
  the splits keep exact class proportions and one class never moves another's examples.

Example:
    >>> import numpy as np
    >>> from tfpilot.data.splits import hash_split, stratified_split
    >>> y = np.array([0] * 10 + [1] * 10)
    >>> parts = stratified_split(y, {"val": 0.2, "test": 0.1}, seed=0)
    >>> sorted((k, len(v)) for k, v in parts.items())
    [('test', 2), ('train', 14), ('val', 4)]
    >>> keys = [f"c{k}/{i:03d}.png" for i, k in enumerate(y)]
    >>> before = hash_split(keys, y, {"val": 0.3}, seed=0)["val"]
    >>> after = hash_split(keys + ["c1/new.png"], np.append(y, 1), {"val": 0.3}, seed=0)["val"]
    >>> set(before) == set(after) - {20}  # the new file moved nobody
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np


def unit_hash(seed: int, key: str, salt: str = "split") -> float:
    """A number in [0, 1) fixed by ``(salt, seed, key)`` alone (64 bits of BLAKE2b).

    Example:
        >>> unit_hash(42, "cat/001.jpg") == unit_hash(42, "cat/001.jpg") != unit_hash(43, "cat/001.jpg")
        True
    """
    digest = hashlib.blake2b(f"{salt}\0{seed}\0{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _active(fractions: Mapping[str, float]) -> list[str]:
    return [n for n, f in fractions.items() if f > 0]


def _finish(out: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.array([], np.int64) for k, v in out.items()}


def hash_split(
    keys: Sequence[str], y: np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Split indices of ``keys`` into 'train' plus one part per ``fractions`` entry, by hash.

    Example ``i`` goes to the part whose interval holds ``unit_hash(seed, keys[i])``: the
    parts take ``[0, f1)``, ``[f1, f1 + f2)``, ... in the order of ``fractions``, 'train'
    the rest. Its part depends on its key and the seed only, so adding or removing other
    examples never moves it -- with one exception that keeps every class learnable: a
    class none of whose examples hashed into 'train' keeps its highest-hashing example in
    'train' (this can only happen to a class of a few examples). Examples with equal keys
    (duplicate texts or table rows) always share a part, that exception included.

    Args:
        keys: a stable key per example (a path relative to the dataset root, a text).
        y: integer labels, one per key.
        fractions: name -> expected fraction of each class to put in that part (sum < 1).
        seed: the split seed.

    Returns:
        name -> sorted index array (every index in exactly one part).

    Example:
        >>> y = np.array([0, 0, 0, 1, 1, 1])
        >>> parts = hash_split([f"{i}.png" for i in range(6)], y, {"test": 0.5}, seed=1)
        >>> sorted(np.concatenate(list(parts.values())).tolist())
        [0, 1, 2, 3, 4, 5]
    """
    y = np.asarray(y)
    if len(keys) != len(y):
        raise ValueError(f"hash_split: {len(keys)} keys but {len(y)} labels")
    names = _active(fractions)
    u = np.array([unit_hash(seed, str(k)) for k in keys], dtype=np.float64)
    bounds = np.cumsum([fractions[n] for n in names])
    part = np.searchsorted(bounds, u, side="right")  # index into names; len(names) = train
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if len(members) and not np.any(part[members] == len(names)):
            top = members[u[members] == u[members].max()]  # the highest key, with its duplicates
            part[top] = len(names)  # keep the class learnable
    out = {"train": [np.flatnonzero(part == len(names))]}
    out.update({n: [np.flatnonzero(part == i)] for i, n in enumerate(names)})
    return _finish(out)


def stratified_split(y: np.ndarray, fractions: Mapping[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split indices of ``y`` into 'train' plus one part per ``fractions`` entry.

    Each class is permuted by its own generator, seeded with ``(seed, class)``, and cut at
    the rounded fractions: exact class proportions, and the examples of one class never
    move because another class gained or lost examples.

    Args:
        y: integer labels.
        fractions: name -> fraction of each class to put in that part (sum < 1).
        seed: seed of the per-class permutations.

    Returns:
        name -> sorted index array; 'train' takes what is left. A class with too few
        examples keeps at least one in 'train'.
    """
    y = np.asarray(y)
    names = _active(fractions)
    out: dict[str, list[np.ndarray]] = {n: [] for n in ["train", *names]}
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[_class_rng(seed, int(cls)).permutation(len(idx))]
        start = 0
        for name in names:
            n = int(round(fractions[name] * len(idx)))
            n = min(n, max(len(idx) - start - 1, 0))  # keep >= 1 for train
            out[name].append(idx[start : start + n])
            start += n
        out["train"].append(idx[start:])
    return _finish(out)


def _class_rng(seed: int, cls: int) -> np.random.Generator:
    """The generator of one class: seeded by ``(seed, class)`` (negative seeds wrap)."""
    return np.random.default_rng([seed % 2**63, cls])


def limit_stratified(
    y: np.ndarray, limit: int, seed: int, keys: Sequence[str] | None = None
) -> np.ndarray:
    """Indices of a class-balanced subset of at most ``limit`` examples (sorted).

    Args:
        y: integer labels.
        limit: the most examples to keep.
        seed: the seed of the choice.
        keys: stable keys of the examples (see :func:`hash_split`); when given, each class
            keeps its lowest-hashing examples, so adding files changes the subset little.

    Example:
        >>> limit_stratified(np.repeat(np.arange(2), 10), 4, seed=0).shape
        (4,)
    """
    y = np.asarray(y)
    if limit >= len(y):
        return np.arange(len(y))
    frac = limit / len(y)
    if keys is None:
        keep = stratified_split(y, {"keep": frac}, seed)["keep"]
        score = np.random.default_rng(seed).random(len(y))
    else:
        score = np.array([unit_hash(seed, str(k), salt="limit") for k in keys])
        parts = []
        for cls in np.unique(y):
            idx = np.flatnonzero(y == cls)
            parts.append(idx[np.argsort(score[idx], kind="stable")][: int(round(frac * len(idx)))])
        keep = np.concatenate(parts)
    if len(keep) > limit:  # rounding kept a few too many: drop the highest scores
        keep = keep[np.argsort(score[keep], kind="stable")][:limit]
    return np.sort(keep).astype(np.int64)
