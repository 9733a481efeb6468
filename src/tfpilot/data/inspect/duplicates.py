"""Duplicate search without comparing all pairs.

* **Exact**: equal content digests, grouped by a dictionary (:func:`exact_groups`).
* **Near, images**: 64-bit perceptual hashes within a Hamming distance ``t``, by multi-index
  hashing (:func:`near_pairs`): the 64 bits are cut into ``t + 1`` chunks, and two hashes at
  distance <= ``t`` agree exactly on at least one chunk (pigeonhole), so only hashes sharing a
  chunk value are compared -- a few hundred thousand comparisons for CIFAR-10's 60,000 images
  instead of its 1.8e9 pairs.
* **Near, texts**: MinHash over word shingles of the normalised text (lower case, punctuation
  and runs of white space folded to one space), with ``datasketch``'s LSH for candidates and
  the exact Jaccard similarity of the shingle sets to confirm them (:func:`text_near_pairs`).

Example:
    >>> exact_groups(["a", "b", "a", "c", "a"])
    [[0, 2, 4]]
    >>> text_near_pairs(["The cat sat on the mat today", "the cat sat on the mat, today!", "dogs bark"])
    [(0, 1, 1.0)]
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_SPACE = re.compile(r"\s+")


def exact_groups(digests: Sequence[str], skip: frozenset[str] = frozenset({"missing", ""})) -> list[list[int]]:
    """Indices of equal digests, groups of two or more, each sorted, ordered by their first index.

    Args:
        digests: a content digest per example.
        skip: digests that mean "no content" (never grouped).
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(digests):
        if d not in skip:
            groups[d].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (``np.bitwise_count`` on NumPy 2, a byte table before)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    as_bytes = np.ascontiguousarray(x, dtype=np.uint64).view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1).astype(np.int64)


def _chunks(bits: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` (shift, width) chunks covering ``bits`` bits, widths differing by at most 1."""
    widths = [bits // parts + (1 if i < bits % parts else 0) for i in range(parts)]
    out, shift = [], 0
    for w in widths:
        out.append((shift, w))
        shift += w
    return out


def near_pairs(hashes: np.ndarray, max_distance: int, bits: int = 64, max_bucket: int = 20_000) -> np.ndarray:
    """Pairs of 64-bit hashes within ``max_distance`` bits, found by multi-index hashing.

    Args:
        hashes: uint64 hashes, one per example.
        max_distance: the largest Hamming distance that counts as near.
        bits: bits per hash.
        max_bucket: a chunk value shared by more hashes than this (a flat image's hash, say)
            is compared in blocks, never all at once.

    Returns:
        ``(P, 3)`` int64 rows ``(i, j, distance)`` with ``i < j``, sorted, each pair once.

    Example:
        >>> near_pairs(np.array([0b1011, 0b1001, 0b0100], np.uint64), max_distance=1).tolist()
        [[0, 1, 1]]
    """
    h = np.asarray(hashes, dtype=np.uint64)
    found: list[np.ndarray] = []
    for shift, width in _chunks(bits, max_distance + 1):
        key = (h >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            members = np.sort(order[s:e])
            for b in range(0, len(members), max_bucket):
                rows = members[b:b + max_bucket]
                dist = popcount(h[rows][:, None] ^ h[members][None, :])
                i, j = np.nonzero(dist <= max_distance)
                keep = rows[i] < members[j]
                found.append(np.stack([rows[i][keep], members[j][keep], dist[i, j][keep]], axis=1))
    if not found:
        return np.zeros((0, 3), np.int64)
    pairs = np.unique(np.concatenate(found).astype(np.int64), axis=0)
    return pairs


def normalise_text(text: str) -> str:
    """Lower case, punctuation dropped, white space folded: what near-duplicate texts share.

    Example:
        >>> normalise_text("  Hello,   WORLD!\\n")
        'hello world'
    """
    return _SPACE.sub(" ", _PUNCT.sub(" ", str(text).lower())).strip()


def shingles(text: str, k: int = 2) -> set[str]:
    """The word ``k``-grams of the normalised text (its words, when it has fewer than ``k``).

    Example:
        >>> sorted(shingles("A b, c"))
        ['a b', 'b c']
    """
    words = normalise_text(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def text_near_pairs(texts: Sequence[str], threshold: float = 0.5, k: int = 2, num_perm: int = 128,
                    seed: int = 1) -> list[tuple[int, int, float]]:
    """Pairs of texts whose word-``k``-gram sets have Jaccard similarity >= ``threshold``.

    Candidates come from MinHash LSH (``datasketch.MinHashLSH``), so texts are never compared
    all against all; each candidate is then confirmed on its exact shingle sets.

    Args:
        texts: the texts.
        threshold: the least Jaccard similarity that counts as near.
        k: words per shingle.
        num_perm: MinHash permutations.
        seed: the MinHash seed.

    Returns:
        ``(i, j, jaccard)`` with ``i < j``, sorted.
    """
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(t, k) for t in texts]
    present = [i for i, s in enumerate(sets) if s]
    hashes = MinHash.bulk([[w.encode("utf-8") for w in sets[i]] for i in present], num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for i, m in zip(present, hashes):
            session.insert(i, m, check_duplication=False)
    out: set[tuple[int, int, float]] = set()
    for i, m in zip(present, hashes):
        for j in lsh.query(m):
            if j > i:
                a, b = sets[i], sets[j]
                jac = len(a & b) / len(a | b)
                if jac >= threshold:
                    out.add((i, int(j), round(jac, 4)))
    return sorted(out)
