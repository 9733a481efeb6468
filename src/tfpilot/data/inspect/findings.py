"""The data part of ``tfpilot inspect``: counts, file and text statistics, duplicates, table columns.

:func:`inspect_data` returns a JSON-ready dict; every finding names its examples by split, id
(a file path relative to the data root, a text's id, ``row N``) and label. Pairs also carry
``i``/``j``, the positions of their two examples in the flat listing (:func:`~.examples.flatten`).

Example:
    >>> from tfpilot.config import DataConfig
    >>> from tfpilot.data import prepare_data
    >>> found, flat = inspect_data(prepare_data(DataConfig(dataset="digits")))
    >>> found["duplicates"]["exact"]["pairs"] == [] or found["duplicates"]["exact"]["count"] > 0
    True
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import numpy as np

from tfpilot.data.inspect.duplicates import exact_groups, near_pairs, text_near_pairs
from tfpilot.data.inspect.examples import (Examples, array_digests, flatten, row_digests, text_digests)
from tfpilot.data.inspect.hashing import array_phashes, hash_image_files
from tfpilot.data.inspect.options import IMAGE_DISTANCE, TEXT_SIMILARITY

log = logging.getLogger(__name__)

#: Pairs kept in the JSON per kind (the counts are always complete).
MAX_PAIRS = 20_000


def _histogram(values: Counter, top: int = 30) -> dict[str, int]:
    return {str(k): int(n) for k, n in values.most_common(top)}


def counts(flat: Examples) -> dict[str, Any]:
    """Examples per class and split, and each split's imbalance (largest class / smallest)."""
    out: dict[str, Any] = {"per_split": {}, "imbalance": {}}
    if not flat.class_names:
        return out
    k = len(flat.class_names)
    for name in dict.fromkeys(flat.split):
        n = np.bincount(flat.y[flat.split == name], minlength=k)
        out["per_split"][str(name)] = {c: int(v) for c, v in zip(flat.class_names, n)}
        present = n[n > 0]
        out["imbalance"][str(name)] = {
            "ratio": round(float(present.max() / present.min()), 3) if len(present) else None,
            "largest": flat.class_names[int(n.argmax())], "smallest": flat.class_names[int(n.argmin())],
            "missing_classes": [flat.class_names[c] for c in np.flatnonzero(n == 0)]}
    return out


def image_stats(flat: Examples, workers: int | None) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """Sizes, modes, formats and aspect ratios of the image files (histograms); returns
    ``(stats, digests, phashes)`` (files that fail here are listed as unreadable)."""
    infos = hash_image_files(list(flat.paths), workers=workers)
    ok = [x for x in infos if not x.error]
    ratios = np.array([x.width / x.height for x in ok if x.height]) if ok else np.zeros(0)
    edges = np.array([0, 0.5, 0.75, 0.9, 1.0 - 1e-9, 1.0 + 1e-9, 1.11, 1.34, 2.0, np.inf])
    hist = np.histogram(ratios, bins=edges)[0]
    labels = ["<0.5", "0.5-0.75", "0.75-0.9", "0.9-1", "1 (square)", "1-1.11", "1.11-1.34", "1.34-2", ">2"]
    stats = {
        "sizes": _histogram(Counter(f"{x.width}x{x.height}" for x in ok)),
        "modes": _histogram(Counter(x.mode for x in ok)),
        "formats": _histogram(Counter(x.format for x in ok)),
        "aspect_ratios": {lab: int(n) for lab, n in zip(labels, hist)},
        "widths": {"min": min((x.width for x in ok), default=0), "max": max((x.width for x in ok), default=0)},
        "heights": {"min": min((x.height for x in ok), default=0), "max": max((x.height for x in ok), default=0)},
        "unreadable": [{**flat.ref(i), "reason": x.error} for i, x in enumerate(infos) if x.error],
    }
    return stats, [x.digest for x in infos], np.array([x.phash for x in infos], dtype=np.uint64)


def text_stats(texts: np.ndarray, flat: Examples) -> dict[str, Any]:
    """Lengths in words and characters (histograms over powers of two), and the empty texts."""
    words = np.array([len(str(t).split()) for t in texts])
    chars = np.array([len(str(t)) for t in texts])
    edges = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, np.inf]
    hist = np.histogram(words, bins=edges)[0]
    return {
        "words": {f"{int(a)}-{b - 1 if np.isfinite(b) else 'more'}": int(n)
                  for a, b, n in zip(edges[:-1], edges[1:], hist)},
        "words_median": float(np.median(words)) if len(words) else 0.0,
        "chars": {"min": int(chars.min(initial=0)), "median": float(np.median(chars)) if len(chars) else 0.0,
                  "max": int(chars.max(initial=0))},
        "empty": [flat.ref(i) for i in np.flatnonzero(words == 0)],
    }


def _pair(flat: Examples, i: int, j: int, kind: str, what: str, **extra: Any) -> dict[str, Any]:
    a, b = flat.ref(i), flat.ref(j)
    return {"kind": kind, "what": what, "i": int(i), "j": int(j), "a": a, "b": b,
            "cross_split": a["split"] != b["split"], "labels_differ": a["label"] != b["label"], **extra}


def _exact_pairs(flat: Examples, digests: list[str], what: str) -> list[dict[str, Any]]:
    """Each exact-duplicate group as pairs of its first member (training copies first) with the others."""
    rank = {"train": 0, "val": 1, "test": 2}
    pairs = []
    for group in exact_groups(digests):
        group = sorted(group, key=lambda g: (rank.get(str(flat.split[g]), 3), g))
        pairs.extend(_pair(flat, group[0], g, "exact", what) for g in group[1:])
    return pairs


def _near_image_pairs(flat: Examples, digests: list[str], phashes: np.ndarray, ok: np.ndarray, what: str,
                      max_distance: int) -> list[dict[str, Any]]:
    index = np.flatnonzero(ok)
    found = near_pairs(phashes[index], max_distance)
    return [_pair(flat, index[a], index[b], "near", what, distance=int(d)) for a, b, d in found
            if digests[index[a]] != digests[index[b]]]


def _near_text_pairs(flat: Examples, texts: np.ndarray, digests: list[str], what: str,
                     threshold: float) -> list[dict[str, Any]]:
    return [_pair(flat, a, b, "near", what, similarity=s) for a, b, s in text_near_pairs(list(texts), threshold)
            if digests[a] != digests[b]]


def leaks(flat: Examples, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per evaluation split: how many of its examples have a duplicate (exact or near) in an
    earlier split (train for val; train or val for test), and which."""
    rank = {"train": 0, "val": 1, "test": 2}
    hit: dict[str, dict[str, set[int]]] = {}
    for p in pairs:
        if not p["cross_split"]:
            continue
        i, j = (p["i"], p["j"]) if rank.get(p["a"]["split"], 3) <= rank.get(p["b"]["split"], 3) else (p["j"], p["i"])
        hit.setdefault(str(flat.split[j]), {"exact": set(), "near": set()})[p["kind"]].add(j)
    out = {}
    for name in dict.fromkeys(flat.split):
        if name == "train":
            continue
        size = int((flat.split == name).sum())
        h = hit.get(str(name), {"exact": set(), "near": set()})
        both = h["exact"] | h["near"]
        out[str(name)] = {"examples": size, "with_duplicate_in_earlier_split": len(both),
                          "fraction": round(len(both) / size, 5) if size else 0.0,
                          "exact": len(h["exact"]), "near_only": len(h["near"] - h["exact"])}
    return out


def _summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(pairs), "cross_split": sum(p["cross_split"] for p in pairs),
            "within_split": sum(not p["cross_split"] for p in pairs),
            "labels_differ": sum(p["labels_differ"] for p in pairs), "pairs": pairs[:MAX_PAIRS],
            "listed": min(len(pairs), MAX_PAIRS)}


def duplicates(flat: Examples, *, workers: int | None = None, image_distance: int = IMAGE_DISTANCE,
               text_similarity: float = TEXT_SIMILARITY) -> tuple[dict[str, Any], dict[str, Any]]:
    """Exact and near duplicates of every kind of content; returns ``(duplicates, stats)``
    where ``stats`` holds the image or text statistics computed on the way and timings."""
    stats: dict[str, Any] = {}
    exact, near = [], []
    start = time.perf_counter()
    if flat.kind == "image":
        stats["images"], digests, phashes = image_stats(flat, workers)
        stats["hash_s"] = round(time.perf_counter() - start, 2)
        ok = np.array([d != "missing" for d in digests]) & np.array(
            [not x for x in _errors(stats["images"], flat)], dtype=bool)
        exact = _exact_pairs(flat, digests, "image")
        near = _near_image_pairs(flat, digests, phashes, ok, "image", image_distance)
    elif flat.kind == "array":
        digests, phashes = array_digests(flat.pixels), array_phashes(flat.pixels)
        stats["hash_s"] = round(time.perf_counter() - start, 2)
        exact = _exact_pairs(flat, digests, "image")
        near = _near_image_pairs(flat, digests, phashes, np.ones(len(flat), bool), "image", image_distance)
    elif flat.kind == "text":
        stats["texts"] = text_stats(flat.texts, flat)
        digests = text_digests(flat.texts)
        stats["hash_s"] = round(time.perf_counter() - start, 2)
        exact = _exact_pairs(flat, digests, "text")
        near = _near_text_pairs(flat, flat.texts, digests, "text", text_similarity)
    else:
        exact = _exact_pairs(flat, row_digests(flat), "row")
        for name, kind in flat.column_kinds.items():
            values = flat.columns[name]
            if kind == "text":
                stats.setdefault("texts", {})[name] = text_stats(values, flat)
                near += _near_text_pairs(flat, values, text_digests(values), f"column {name}", text_similarity)
            elif kind == "image":
                flat_col = Examples("image", flat.split, flat.index, flat.ids, flat.y, flat.class_names, paths=values)
                info, digests, phashes = image_stats(flat_col, workers)
                stats.setdefault("images", {})[name] = info
                near += _near_image_pairs(flat, digests, phashes, np.array([d != "missing" for d in digests]),
                                          f"column {name}", image_distance)
        stats["hash_s"] = round(time.perf_counter() - start, 2)
    stats["duplicates_s"] = round(time.perf_counter() - start, 2)
    found = {"exact": _summary(exact), "near": _summary(near), "leaks": leaks(flat, exact + near),
             "settings": {"image_max_hamming_distance": image_distance, "text_min_jaccard": text_similarity,
                          "text_shingles": "word bigrams of the lower-cased text without punctuation"}}
    return found, stats


def _errors(images: dict[str, Any], flat: Examples) -> list[bool]:
    bad = {u["id"] for u in images["unreadable"]}
    return [str(i) in bad for i in flat.ids]


def inspect_data(data: Any, *, frame: Any = None, workers: int | None = None, image_distance: int = IMAGE_DISTANCE,
                 text_similarity: float = TEXT_SIMILARITY) -> tuple[dict[str, Any], Examples]:
    """Every data check of ``tfpilot inspect`` but the label issues.

    Args:
        data: prepared data (:func:`~tfpilot.data.table.prepare_run_data`): the splits as training makes them.
        frame: a table's rows as read (for the column checks); None for other data.
        workers: processes hashing image files (default: the CPUs).
        image_distance: the largest perceptual-hash distance of a near-duplicate image.
        text_similarity: the least word-bigram Jaccard similarity of a near-duplicate text.

    Returns:
        ``(findings, flat)``: the JSON-ready findings, and the flat listing their ``i``/``j`` index.
    """
    flat = flatten(data)
    report = data.report
    found: dict[str, Any] = {
        "kind": flat.kind, "examples": len(flat), "classes": flat.class_names,
        "split_sizes": {str(n): int((flat.split == n).sum()) for n in dict.fromkeys(flat.split)},
        "counts": counts(flat),
        "unreadable": [{"id": s.path, "reason": s.reason} for s in report.skipped],
        "loader_notes": list(report.notes),
    }
    dups, stats = duplicates(flat, workers=workers, image_distance=image_distance, text_similarity=text_similarity)
    found.update({k: v for k, v in stats.items() if k in ("images", "texts")})
    if flat.kind == "image":
        found["unreadable"] += stats["images"].pop("unreadable")
    found["duplicates"] = dups
    found["timings"] = {k: v for k, v in stats.items() if k.endswith("_s")}
    if flat.kind == "table" and frame is not None:
        found["columns"] = table_columns(data, frame, flat)
    return found, flat


def table_columns(data: Any, frame: Any, flat: Examples) -> dict[str, Any]:
    """A table's column checks (:mod:`.columns`) with the resolved schema's roles and types."""
    from tfpilot.data.inspect.columns import column_stats, single_column_leakage

    schema = {c.name: c for c in getattr(data, "schema", [])}
    stats = column_stats(frame)
    for s in stats:
        info = schema.get(s["name"])
        s.update({"role": info.role, "type": info.kind, "how": info.how} if info else
                 {"role": "unused", "type": "-", "how": ""})
    leakage: list[dict[str, Any]] = []
    head = next((o for o in data.spec.outputs), None)
    if head is not None and "train" in data.splits:
        train = data.splits["train"]
        held_names = [n for n in data.splits if n != "train" and len(data.splits[n])]
        if held_names:
            kinds = {f.name: f.kind for f in data.spec.inputs}
            keys = {f.name: f.key for f in data.spec.inputs}
            held_x = {n: np.concatenate([data.splits[s].inputs[keys[n]] for s in held_names]) for n in kinds}
            held_y = np.concatenate([data.splits[s].targets[head.key] for s in held_names])
            classify = head.kind in ("category", "binary")
            leakage = single_column_leakage({n: train.inputs[keys[n]] for n in kinds}, held_x, kinds,
                                            train.targets[head.key], held_y, classify)
    return {"target": head.name if head is not None else None, "columns": stats, "single_column_leakage": leakage,
            "constant": [s["name"] for s in stats if s["constant"]],
            "id_like": [s["name"] for s in stats if s["id_like"]],
            "leaky": [e["column"] for e in leakage if e["leak"]]}
